"""The cross-worker lock on a cold key: one worker computes, the others wait for its fill.

Off by default (``SEARCH_REDIS_LOCK_ENABLED``; measured: docs/cache.md). The lock key
carries the generation: after a write, requests lock keys of their own.

The lock is redis-py's :class:`~redis.asyncio.lock.Lock`: ``SET NX PX`` with a random
token, released by a script that deletes the key only if it still holds that token. A
worker whose lock expired while it computed (another then took it) releases nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

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

    async def try_lock(self, gen: int, key: str) -> Lock | Literal[False] | None:
        """The held lock: this worker computes (then :meth:`unlock` it); False: another
        worker does; None: Redis unusable."""
        lock = Lock(
            self.link.require(),
            self._key(gen, key),
            timeout=self.ttl_ms / 1000,
            blocking=False,
            thread_local=False,  # one event loop: the token lives on this Lock object
        )
        got = await self.link.call("lock", lambda: lock.acquire(blocking=False))
        if isinstance(got, Skipped):
            return None
        return lock if got else False

    async def unlock(self, lock: Lock) -> None:
        """Release ``lock`` if it still holds its token (expired and taken: nothing)."""

        async def release() -> None:
            # expired while this worker computed: the key is another's now, left alone
            with contextlib.suppress(LockNotOwnedError):
                await lock.release()

        await self.link.call("unlock", release)

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
