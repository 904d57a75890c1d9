"""``service.cache.redis``'s client against a real Valkey: closing it closes its pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ci import stack
from ci.settings import StackSettings
from service.cache.redis import RedisLink, connect_client
from service.metrics import Metrics
from service.settings import Settings


@pytest.fixture
def valkey_url(tmp_path: Path) -> Iterator[str]:
    settings = StackSettings(
        run_dir=tmp_path / "valkey",
        pg_port=stack.free_port(),
        service_port=stack.free_port(),
        redis_port=stack.free_port(),
    )
    comp = stack.start_valkey(settings)
    assert comp.pid is not None
    try:
        yield comp.url
    finally:
        stack.stop_pid(comp.pid, "valkey")


async def _clients(url: str) -> int:
    async with aioredis.Redis.from_url(url) as observer:
        return len(await observer.client_list())  # the observer included


async def test_closing_the_link_closes_every_pooled_connection(valkey_url: str) -> None:
    client = connect_client(Settings.from_env({"REDIS_URL": valkey_url}))
    assert client is not None
    link = RedisLink(client, Metrics(), timeout_s=1.0, breaker_failures=3, breaker_cooldown_s=1.0)
    idle = await _clients(valkey_url)
    # concurrent calls check out several connections of the bounded pool
    results = await asyncio.gather(*[link.get("l2", f"k{i}") for i in range(8)])
    assert results == [None] * 8  # real round trips, nothing stored
    assert await _clients(valkey_url) > idle
    await link.aclose()
    await asyncio.sleep(0.1)
    assert await _clients(valkey_url) == idle
