r"""The write log of delta validation: what changed the corpus since a cached result.

Every write appends :class:`WriteRecord`\ s to a bounded list in Redis (the Lua scripts
live in :mod:`service.cache.generation`, which talks to Redis); each process keeps the
records it has read in a :class:`WriteLog`, whose :meth:`WriteLog.check` decides whether a
result computed at an older generation is still the exact top k (see the docstring of
:mod:`service.cache` for the guarantee). Pure: no I/O here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from service.model import DIM, Row, Vectors

# A generation this far below the highest one seen is a new life of the key (Valkey
# restarted or evicted it), not a late answer of a concurrent read: forget the records.
GEN_REGRESSION = 1024
# Inserts are compared in float32 here but ranked by PostgreSQL (in float16 for halfvec,
# ~1e-3 error): an insert this close behind the k-th distance still counts as a change.
DISTANCE_MARGIN = 5e-3

RecordKind = Literal["insert", "delete", "reset"]
_KINDS: tuple[RecordKind, ...] = ("insert", "delete", "reset")
Outcome = Literal["kept", "insert", "delete", "reset", "gap"]


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One change to the corpus, as the write log in Redis holds it (one per generation).

    ``insert`` carries the document's topic and float32 embedding, ``delete`` its id;
    ``reset`` (bulk load, admin invalidation, a write whose record was lost) changes
    everything.
    """

    kind: RecordKind
    doc_id: int = 0
    topic: str = ""
    vector: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"write record kind {self.kind!r} is invalid: expected {_KINDS}")
        if self.kind == "insert" and len(self.vector) != DIM * 4:
            raise ValueError(
                f"insert record of document {self.doc_id} has a {len(self.vector)}-byte "
                f"vector, expected {DIM * 4}"
            )

    @classmethod
    def insert(cls, doc_id: int, topic: str, vector: Vectors) -> WriteRecord:
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(DIM)
        return cls("insert", doc_id, topic, vec.tobytes())

    def encode(self) -> bytes:
        return orjson.dumps([self.kind, self.doc_id, self.topic]) + b"\n" + self.vector

    @classmethod
    def decode_logged(cls, raw: bytes) -> tuple[int, WriteRecord]:
        """A log entry as the write script stored it: ``b"<generation> <record>"``."""
        gen, _, rest = raw.partition(b" ")
        head, _, vector = rest.partition(b"\n")
        kind, doc_id, topic = orjson.loads(head)
        return int(gen), cls(kind, int(doc_id), str(topic), vector)


class Validatable(Protocol):
    """What a check needs of a cached result (``service.cache.results.CachedResult``)."""

    @property
    def rows(self) -> tuple[Row, ...]: ...
    @property
    def gen(self) -> int: ...
    @property
    def vector(self) -> bytes: ...


def _unit(raw: bytes) -> npt.NDArray[np.float32] | None:
    vec = np.frombuffer(raw, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / np.float32(norm) if norm > 0 else None


class WriteLog:
    """This process's copy of the recent write-log records, by generation (immutable).

    Filled by the generation reads (which bring back the records newer than :attr:`top`),
    bounded like the log in Redis. :meth:`check` decides whether an entry computed at an
    older generation is still exact at the current one.
    """

    def __init__(self, size: int) -> None:
        assert size >= 1, f"write log size must be >= 1, got {size}"
        self.size = size
        self.top = 0  # highest generation read; 0: none yet
        self._records: OrderedDict[int, WriteRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def observe(self, gen: int, records: Sequence[tuple[int, WriteRecord]]) -> None:
        """Take a generation read's answer: the generation and the records it returned."""
        if gen < self.top - GEN_REGRESSION:
            self._records.clear()  # a new life of the generation key: old records lie
            self.top = 0
        for g, record in records:
            self._records[g] = record
            self._records.move_to_end(g)
        while len(self._records) > self.size:
            self._records.popitem(last=False)
        self.top = max(self.top, gen)

    def clear(self) -> None:
        self._records.clear()
        self.top = 0

    def check(self, entry: Validatable, gen: int, k: int, topic: str | None) -> Outcome:
        """Is ``entry`` (exact at ``entry.gen``) still exact at ``gen``? Why not, if not.

        Exact search semantics: a top-k list changes only if a new document matching the
        filter ranks at or above its k-th distance (or the list had fewer than k hits),
        or one of its own documents is deleted. Anything unknown counts as a change.
        """
        assert entry.gen < gen, f"check needs an older entry, got {entry.gen} >= {gen}"
        if gen - entry.gen > self.size:
            return "gap"
        query = _unit(entry.vector) if entry.vector else None
        ids = {row[0] for row in entry.rows}
        full = len(entry.rows) >= k
        kth = 1.0 - min((row[2] for row in entry.rows), default=1.0)
        for g in range(entry.gen + 1, gen + 1):
            record = self._records.get(g)
            if record is None:
                return "gap"
            if record.kind == "reset":
                return "reset"
            if record.kind == "delete":
                if record.doc_id in ids:
                    return "delete"
                continue
            if topic is not None and record.topic != topic:
                continue
            if not full or query is None:
                return "insert"
            doc = _unit(record.vector)
            if doc is None or 1.0 - float(query @ doc) <= kth + DISTANCE_MARGIN:
                return "insert"
        return "kept"
