"""One request's handle on the result cache: the query, its key and the generation read.

:meth:`service.cache.search_cache.SearchCache.lookup` reads the generation and hands
back a :class:`CacheLookup`; the engine asks it for the L1 and Redis entries, the lock
and the fill, without threading (generation, key, query) through every call.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from service.cache.lock import FillLock
from service.cache.results import CachedResult, ResultCache
from service.model import Hit, SearchQuery, Vectors


@dataclass(frozen=True, slots=True)
class CacheLookup:
    results: ResultCache
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

    async def fill(self, hits: tuple[Hit, ...], delta_s: float, vector: Vectors) -> None:
        await self.results.fill(self.gen, self.key, hits, delta_s, vector)

    def should_refresh(self, entry: CachedResult) -> bool:
        return self.results.should_refresh(entry)

    async def try_lock(self) -> bool | None:
        """True: this worker computes; False: another does; None: no lock (off or Redis)."""
        if self.lock is None:
            return None
        return await self.lock.try_lock(self.gen, self.key)

    async def unlock(self) -> None:
        if self.lock is not None:
            await self.lock.unlock(self.gen, self.key)

    async def wait_for_fill(self) -> CachedResult | None:
        if self.lock is None:
            return None
        return await self.lock.wait_for_fill(self.gen, self.key, self.query)
