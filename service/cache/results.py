"""Cached search results: the value format, and the L1 + Redis layers that hold them.

A result is keyed by everything that decides it (model, index and its knobs, normalised
query, k, topic) but not by the generation: the entry carries the generation ``g0`` it is
exact at, and :meth:`ResultCache.current` serves it at a later generation only when the
write log shows nothing that changed it (:mod:`service.cache`).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from service.cache.lru import LRUCache
from service.cache.redis import RedisLink, Skipped, Write
from service.cache.writelog import WriteLog
from service.metrics import Metrics
from service.model import DIM, Hit, Row, SearchQuery, Vectors, hits_of, rows_of
from service.settings import Settings

VALUE_VERSION = 2  # part of the result key too: another format never meets this one


def search_fingerprint(s: Settings, model_id: str) -> str:
    """Everything besides the query that decides a result: model, index and its knobs."""
    parts: list[Any] = [model_id, s.index_mode, s.vector_type]
    if s.index_mode == "hnsw":
        parts += [s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search]
    elif s.index_mode == "ivfflat":
        parts += [s.ivfflat_lists, s.ivfflat_probes]
    return hashlib.blake2b(orjson.dumps(parts), digest_size=8).hexdigest()


# Hits are kept as Rows. The garbage collector stops tracking a tuple that holds only
# numbers and strings, so a cached result costs its collections one tracked object
# whatever its k; as Hit objects (k + 2 tracked objects), 10,000 results of k=10 made
# every full collection walk 130,000 objects (72 ms here: benchmarks/gc_cached_results.py).


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A result list, the generation it is exact at, and the query vector to validate it."""

    rows: tuple[Row, ...]  # the hits, best first (see Row)
    delta_s: float  # time the computation took (XFetch)
    expires_at: float  # wall clock, shared by every process
    gen: int = 0  # corpus generation read before the computation started
    vector: bytes = b""  # the query's float32 embedding; empty: cannot be validated

    @classmethod
    def of(
        cls,
        hits: Iterable[Hit],
        delta_s: float,
        expires_at: float,
        gen: int = 0,
        vector: bytes = b"",
    ) -> CachedResult:
        return cls(rows_of(hits), delta_s, expires_at, gen, vector)

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The hits as :class:`Hit` objects, made on each call (none are kept)."""
        return hits_of(self.rows)

    def encode(self) -> bytes:
        head = {"v": VALUE_VERSION, "d": self.delta_s, "e": self.expires_at, "g": self.gen}
        # orjson never writes a raw newline: the vector's bytes follow the first one
        return orjson.dumps({**head, "h": self.rows}) + b"\n" + self.vector

    @classmethod
    def decode(cls, raw: bytes) -> CachedResult:
        head, _, vector = raw.partition(b"\n")
        obj = orjson.loads(head)
        if not isinstance(obj, dict) or obj.get("v") != VALUE_VERSION:
            raise ValueError("unknown cache value version")
        if len(vector) not in (0, DIM * 4):
            raise ValueError(f"cache value vector has {len(vector)} bytes, expected {DIM * 4}")
        rows = tuple((int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in obj["h"])
        return cls(rows, float(obj["d"]), float(obj["e"]), int(obj["g"]), vector)


@dataclass(frozen=True, slots=True)
class ResultConfig:
    """Plain values of the result layers."""

    l1: bool
    l1_ttl_s: float
    result_ttl_s: float
    ttl_jitter: float
    xfetch_beta: float
    validate: bool
    namespace: str


def jittered(base: float, jitter: float) -> float:
    """A TTL stretched by a random 0..jitter fraction, so that keys do not expire together."""
    return base * (1.0 + random.random() * jitter)


class ResultCache:
    """The result L1 and its Redis copy; entries are checked against the write log."""

    def __init__(
        self,
        config: ResultConfig,
        link: RedisLink,
        write_log: WriteLog,
        metrics: Metrics,
        fingerprint: str,
        l1: LRUCache[CachedResult],
    ) -> None:
        self.config = config
        self.link = link
        self.write_log = write_log
        self.metrics = metrics
        self.fingerprint = fingerprint
        self.l1 = l1

    def key(self, query: SearchQuery) -> str:
        material = orjson.dumps([self.fingerprint, query.normalised, query.k, query.topic])
        return hashlib.blake2b(material, digest_size=16).hexdigest()

    def redis_key(self, key: str) -> str:
        return f"{self.config.namespace}:r{VALUE_VERSION}:{key}"

    def current(
        self, entry: CachedResult, gen: int, query: SearchQuery
    ) -> tuple[CachedResult | None, bool]:
        """The entry if it is exact at ``gen`` (re-stamped if validated), and whether it was.

        Never an entry of a later generation: after Valkey restarted empty the new
        random generation may lie below an L1 entry's.
        """
        if entry.gen == gen:
            return entry, False
        if entry.gen > gen or not self.config.validate:
            return None, False
        outcome = self.write_log.check(entry, gen, query.k, query.topic)
        self.metrics.cache_validations.labels(outcome).inc()
        if outcome != "kept":
            return None, False
        return replace(entry, gen=gen), True

    def l1_get(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        if not self.config.l1:
            return None
        entry = self.l1.get(key)
        restamped = False
        if entry is not None:
            entry, restamped = self.current(entry, gen, query)
        self._count("l1", entry is not None)
        if entry is not None and restamped:
            self._l1_put(key, entry)
        return entry

    async def redis_get(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        raw = await self.link.get("get", self.redis_key(key))
        if isinstance(raw, Skipped):
            return None
        return self.from_redis(raw, gen, key, query)

    def from_redis(self, raw: Any, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        """The entry in ``raw`` (a GET's reply) if it may be served at ``gen``; counted,
        and kept in L1."""
        entry = None
        if isinstance(raw, bytes):
            try:
                entry = CachedResult.decode(raw)
            except (ValueError, KeyError, IndexError, TypeError):
                self.metrics.redis_errors.labels("decode").inc()
        if entry is not None:
            entry, _ = self.current(entry, gen, query)
        self._count("redis", entry is not None)
        if entry is not None:
            self._l1_put(key, entry)
        return entry

    def fill_l1(
        self, gen: int, key: str, rows: tuple[Row, ...], delta_s: float, vector: Vectors
    ) -> Write:
        """Store a result computed after reading ``gen``, with its query ``vector``: in L1
        now; the Redis write is returned, for the caller to send with others in one round
        trip (:meth:`service.cache.lookup.CacheLookup.fill`)."""
        ttl = jittered(self.config.result_ttl_s, self.config.ttl_jitter)
        raw = np.ascontiguousarray(vector, dtype=np.float32).reshape(DIM).tobytes()
        entry = CachedResult(rows, delta_s, time.time() + ttl, gen, raw)
        self._l1_put(key, entry)
        return Write(self.redis_key(key), entry.encode(), ttl)

    def _l1_put(self, key: str, entry: CachedResult) -> None:
        if self.config.l1:
            expires = min(entry.expires_at, time.time() + self.config.l1_ttl_s)
            self.l1.set(key, entry, expires)

    def should_refresh(self, entry: CachedResult) -> bool:
        """XFetch: recompute before expiry with a probability that grows towards it."""
        beta = self.config.xfetch_beta
        if beta <= 0:
            return False
        draw = -math.log(1.0 - random.random())  # Exp(1); 1 - random() is in (0, 1]
        return time.time() + entry.delta_s * beta * draw >= entry.expires_at

    def _count(self, layer: str, hit: bool) -> None:
        counter = self.metrics.cache_hits if hit else self.metrics.cache_misses
        counter.labels("result", layer).inc()
