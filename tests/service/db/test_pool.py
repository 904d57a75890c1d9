"""The pool opens its connections at start (a warm pool), capped by its maximum."""

from __future__ import annotations

import pytest

from service.db.pool import ConnectionPool
from service.metrics import Metrics
from service.settings import Settings
from tests.harness import Servers


async def _opened(servers: Servers, **env: str) -> tuple[int, float]:
    settings = Settings.from_env({"DATABASE_URL": servers.database_url, **env})
    metrics = Metrics()
    pool = await ConnectionPool.open(settings, metrics)
    try:
        size = pool._pool.get_size()
        gauge = metrics.registry.get_sample_value("search_db_pool_size")
        assert gauge is not None, "the pool-size gauge is registered"
        async with pool.connection():  # a checkout from a warm pool opens nothing
            pass
        assert pool._pool.get_size() == size
        return size, gauge
    finally:
        await pool.close()


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_the_pool_opens_its_minimum_at_start(servers: Servers) -> None:
    # by default every connection it may use (20): none is opened under load
    assert await _opened(servers) == (20, 20.0)
    assert await _opened(servers, SEARCH_POOL_MIN_SIZE="3") == (3, 3.0)


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_minimum_over_the_maximum_opens_the_maximum(servers: Servers) -> None:
    assert await _opened(servers, SEARCH_POOL_MAX_SIZE="4") == (4, 4.0)
