"""The service's domain types: what a search asks, what it answers, what a write adds.

No web framework and no database driver here: every layer (http, search, cache, embed,
db) speaks these types, and only ``service.http.parsing`` builds them from client input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

DIM = 384  # every embedder's output dimension, and the column type vector(384)
Vectors = npt.NDArray[np.float32]  # (n, DIM), L2-normalised rows


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    k: int
    topic: str | None

    @property
    def normalised(self) -> str:
        """Case- and whitespace-insensitive form used for cache keys."""
        return " ".join(self.text.lower().split())


@dataclass(frozen=True, slots=True)
class NewDocument:
    title: str
    body: str
    topic: str


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    title: str
    score: float
    topic: str

    def as_dict(self) -> dict[str, Any]:
        return row_dict((self.id, self.title, self.score, self.topic))


# A Hit as a plain tuple (id, title, score, topic), how caches keep hits: the garbage
# collector stops tracking a tuple of numbers and strings (service.cache.results).
Row: TypeAlias = tuple[int, str, float, str]


def row_dict(row: Row) -> dict[str, Any]:
    """A hit as the API answers it (:meth:`Hit.as_dict` too)."""
    return {"id": row[0], "title": row[1], "score": row[2], "topic": row[3]}


def rows_of(hits: Iterable[Hit]) -> tuple[Row, ...]:
    return tuple((h.id, h.title, h.score, h.topic) for h in hits)


def hits_of(rows: Iterable[Row]) -> tuple[Hit, ...]:
    """Hit objects made from rows (none are kept by the rows' holder)."""
    return tuple(Hit(*row) for row in rows)
