"""One request's handle on the result cache: the query, its key and the generation read.

:meth:`service.cache.search_cache.SearchCache.lookup` reads the generation and hands
back a :class:`CacheLookup`; the engine asks it for the L1 and Redis entries, the lock
and the fill, without threading (generation, key, query) through every call.

A ``/v1/search`` miss makes three Redis round trips: the generation read (shared by
concurrent requests), :meth:`CacheLookup.read` (the result and, when no L1 holds it, the
query's embedding: what the computation needs if the result is missing) and
:meth:`CacheLookup.fill` (the result and, when the model just made it, the embedding).
Each is one :class:`~service.cache.redis.RedisLink` call, so a failure bypasses the
layers of that call, is counted once, and never reaches the route.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio.lock import Lock

from service.cache.embeddings import EmbeddingCache
from service.cache.lock import FillLock
from service.cache.redis import Skipped, Write
from service.cache.results import CachedResult, ResultCache
from service.model import Hit, SearchQuery, Vectors


@dataclass(frozen=True, slots=True, eq=False)
class MissRead:
    """What :meth:`CacheLookup.read` found: the entry to serve, or else the embedding."""

    entry: CachedResult | None  # from Redis, exact at the lookup's generation
    embedding: Vectors | None  # (1, DIM), only without an entry; None: run the model


@dataclass(frozen=True, slots=True)
class CacheLookup:
    results: ResultCache
    embeddings: EmbeddingCache
    lock: FillLock | None  # None: the cross-worker lock is off
    query: SearchQuery
    gen: int  # the corpus generation read when the request started
    key: str  # the result key (no generation in it)

    @property
    def flight_key(self) -> Hashable:
        """Single-flight key: identical queries at one generation share a computation."""
        return (self.gen, self.key)

    @property
    def refresh_key(self) -> Hashable:
        return ("refresh", self.gen, self.key)

    def l1_get(self) -> CachedResult | None:
        return self.results.l1_get(self.gen, self.key, self.query)

    async def redis_get(self) -> CachedResult | None:
        return await self.results.redis_get(self.gen, self.key, self.query)

    async def get(self) -> CachedResult | None:
        """L1, then Redis."""
        return self.l1_get() or await self.redis_get()

    async def read(self) -> MissRead:
        """After an L1 miss: Redis's entry and, in the same round trip, the query's
        embedding unless the embedding L1 has it or the embedding cache is off.

        The embedding is counted (L1, then Redis) only when there is no entry, as
        :meth:`service.search.SearchEngine.embed_query` counts it: only then is it used.
        """
        emb = self.embeddings
        emb_key = emb.key(self.query.normalised) if emb.enabled else None
        known = emb.l1_peek(emb_key) if emb_key is not None else None
        keys = [self.results.redis_key(self.key)]
        if emb_key is not None and known is None:
            keys.append(emb_key)
        replies = await self.results.link.get_many("get", keys)
        if isinstance(replies, Skipped):  # counted by the link: a miss of both layers
            replies = []
        else:
            entry = self.results.from_redis(replies[0], self.gen, self.key, self.query)
            if entry is not None:
                return MissRead(entry, None)
        if emb_key is None:
            return MissRead(None, None)
        if emb.config.l1:
            emb.count("l1", known is not None)
        if known is None and len(replies) == 2:
            known = emb.from_redis(emb_key, replies[1])
        return MissRead(None, known)

    async def fill(
        self,
        hits: tuple[Hit, ...],
        delta_s: float,
        vector: Vectors,
        also: Sequence[Write] = (),
    ) -> None:
        """Store the result (L1 now, Redis before returning) with ``also`` (e.g. the new
        embedding of :meth:`EmbeddingCache.put_l1`) in the same round trip."""
        write = self.results.fill_l1(self.gen, self.key, hits, delta_s, vector)
        await self.results.link.set_many([write, *also])

    def should_refresh(self, entry: CachedResult) -> bool:
        return self.results.should_refresh(entry)

    async def try_lock(self) -> Lock | Literal[False] | None:
        """The held lock: this worker computes, then :meth:`unlock`; False: another
        worker does; None: no lock (off, or Redis unusable)."""
        if self.lock is None:
            return None
        return await self.lock.try_lock(self.gen, self.key)

    async def unlock(self, held: Lock) -> None:
        assert self.lock is not None, "unlock of a lock that try_lock never handed out"
        await self.lock.unlock(held)

    async def wait_for_fill(self) -> CachedResult | None:
        if self.lock is None:
            return None
        return await self.lock.wait_for_fill(self.gen, self.key, self.query)
