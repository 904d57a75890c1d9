"""Cached query embeddings: (model id, normalised text) -> vector, in L1 then Redis.

An embedding is a pure function of its key, so it needs no generation, and the L1 may
serve it even with Redis down.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.cache.lru import LRUCache
from service.cache.redis import RedisLink, Skipped, Write
from service.cache.results import jittered
from service.metrics import Metrics
from service.model import DIM, Vectors


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    enabled: bool
    l1: bool
    l1_ttl_s: float
    ttl_s: float
    ttl_jitter: float
    namespace: str


class EmbeddingCache:
    def __init__(
        self,
        config: EmbeddingConfig,
        link: RedisLink,
        metrics: Metrics,
        model_id: str,
        l1: LRUCache[Vectors],
    ) -> None:
        self.config = config
        self.link = link
        self.metrics = metrics
        self.model_id = model_id
        self.l1 = l1

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def key(self, text: str) -> str:
        digest = hashlib.blake2b(f"{self.model_id}\x00{text}".encode(), digest_size=16)
        return f"{self.config.namespace}:e:{digest.hexdigest()}"

    async def get(self, text: str) -> Vectors | None:
        """A cached (1, DIM) vector for the normalised text, from L1 then Redis."""
        if not self.config.enabled:
            return None
        key = self.key(text)
        if self.config.l1:
            vec = self.l1.get(key)
            self.count("l1", vec is not None)
            if vec is not None:
                return vec
        if self.link.client is None:
            return None
        raw = await self.link.get("get", key)
        if isinstance(raw, Skipped):
            return None
        return self.from_redis(key, raw)

    def l1_peek(self, key: str) -> Vectors | None:
        """The L1's vector, not counted: the caller counts it only if it is used."""
        return self.l1.get(key) if self.config.l1 else None

    def from_redis(self, key: str, raw: Any) -> Vectors | None:
        """The vector in ``raw`` (a GET's reply); counted, and kept in L1."""
        vec = None
        if isinstance(raw, bytes) and len(raw) == DIM * 4:
            vec = np.frombuffer(raw, dtype=np.float32).reshape(1, DIM)
        self.count("redis", vec is not None)
        if vec is not None and self.config.l1:
            self.l1.set(key, vec, time.time() + self.config.l1_ttl_s)
        return vec

    async def put(self, text: str, vector: Vectors) -> None:
        write = self.put_l1(text, vector)
        if write is not None:
            await self.link.set(write.key, write.value, write.ttl_s)

    def put_l1(self, text: str, vector: Vectors) -> Write | None:
        """The L1 half of :meth:`put`, done now; returns the Redis half (None: nothing to
        send), for the caller to send with other writes in one round trip."""
        if not self.config.enabled:
            return None
        key = self.key(text)
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, DIM)
        ttl = jittered(self.config.ttl_s, self.config.ttl_jitter)
        if self.config.l1:
            self.l1.set(key, vec, time.time() + min(ttl, self.config.l1_ttl_s))
        if self.link.client is None:
            return None
        return Write(key, vec.tobytes(), ttl)

    def count(self, layer: str, hit: bool) -> None:
        counter = self.metrics.cache_hits if hit else self.metrics.cache_misses
        counter.labels("embedding", layer).inc()
