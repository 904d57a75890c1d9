"""The cross-worker lock on a cold key: one worker computes, the others wait for its fill.

Off by default (``SEARCH_REDIS_LOCK_ENABLED``; measured: docs/cache.md). The lock key
carries the generation: after a write, requests lock keys of their own.
"""

from __future__ import annotations

import asyncio
import time

from service.cache.redis import RedisLink, Skipped
from service.cache.results import CachedResult, ResultCache
from service.model import SearchQuery


class FillLock:
    def __init__(self, link: RedisLink, results: ResultCache, ttl_ms: int, namespace: str) -> None:
        self.link = link
        self.results = results
        self.ttl_ms = ttl_ms
        self.namespace = namespace

    def _key(self, gen: int, key: str) -> str:
        return f"{self.namespace}:lock:{gen}:{key}"

    async def try_lock(self, gen: int, key: str) -> bool | None:
        """True: this worker computes; False: another does; None: Redis unusable."""
        client = self.link.require()
        lock_key = self._key(gen, key)
        got = await self.link.call(
            "lock", lambda: client.set(lock_key, b"1", nx=True, px=self.ttl_ms)
        )
        if isinstance(got, Skipped):
            return None
        return bool(got)

    async def unlock(self, gen: int, key: str) -> None:
        client = self.link.require()
        await self.link.call("unlock", lambda: client.delete(self._key(gen, key)))

    async def wait_for_fill(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        """Poll for the value another worker is computing, until its lock expires."""
        deadline = time.monotonic() + self.ttl_ms / 1000
        delay = 0.002
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
            entry = await self.results.redis_get(gen, key, query)
            if entry is not None:
                return entry
        return None
