"""The cross-worker lock against a real Valkey: one holder at a time, and a release
deletes the key only while it still holds this worker's token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.lock import Lock

from service.cache.search_cache import SearchCache
from service.metrics import Metrics
from service.model import SearchQuery
from service.settings import Settings

pytestmark = pytest.mark.timeout(30)

TTL_MS = 200


@contextlib.asynccontextmanager
async def _worker(url: str) -> AsyncIterator[SearchCache]:
    settings = Settings.from_env(
        {
            "REDIS_URL": url,
            "SEARCH_REDIS_LOCK_ENABLED": "1",
            "SEARCH_REDIS_LOCK_TTL_MS": str(TTL_MS),
            "SEARCH_REDIS_TIMEOUT_MS": "1000",
        }
    )
    cache = SearchCache.connect(settings, Metrics(), "hash")
    try:
        yield cache
    finally:
        await cache.aclose()


async def test_one_worker_holds_the_lock_and_its_release_frees_it(valkey_url: str) -> None:
    query = SearchQuery("lock me", 5, None)
    async with _worker(valkey_url) as one, _worker(valkey_url) as two:
        first = await one.at(7, query).try_lock()
        assert isinstance(first, Lock)
        assert await two.at(7, query).try_lock() is False
        assert isinstance(await two.at(8, query).try_lock(), Lock)  # a generation apart
        await one.at(7, query).unlock(first)
        again = await two.at(7, query).try_lock()
        assert isinstance(again, Lock)


async def test_a_release_after_expiry_leaves_the_next_holders_lock_alone(
    valkey_url: str,
) -> None:
    """Worker one's lock expires while it computes and worker two takes the key: one's
    release must not delete two's lock (a third worker would compute too)."""
    query = SearchQuery("slow computation", 5, None)
    async with (
        _worker(valkey_url) as one,
        _worker(valkey_url) as two,
        aioredis.Redis.from_url(valkey_url) as observer,
    ):
        late = await one.at(1, query).try_lock()
        assert isinstance(late, Lock)
        await asyncio.sleep(TTL_MS / 1000 + 0.1)
        current = await two.at(1, query).try_lock()
        assert isinstance(current, Lock)
        key = current.name
        token = await observer.get(key)
        await one.at(1, query).unlock(late)  # not its token any more: nothing deleted
        assert await observer.get(key) == token
        assert one.breaker.state == "closed"  # not a Redis failure
        assert await one.at(1, query).try_lock() is False
        await two.at(1, query).unlock(current)
        assert await observer.get(key) is None
