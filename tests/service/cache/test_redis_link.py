"""``service.cache.redis``'s client against a real Valkey: closing it closes its pool;
several commands go in one round trip, and fail or are skipped as one call; the pool's
own timeouts are only a last resort (the call's timeout: test_redis_timeout.py)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser

from service.cache.redis import SKIPPED, BreakerState, RedisLink, Write, connect_client
from service.metrics import Metrics
from service.settings import Settings
from tests.service.cache.wire import Wire, total


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


def state(link: RedisLink) -> BreakerState:
    """Read the state through a call: mypy would otherwise narrow the property."""
    return link.breaker.state


async def _link(url: str, *, failures: int = 3) -> tuple[RedisLink, Wire]:
    """A link whose round trips are counted from its second call on (the first one
    connects, and the connection's handshake takes round trips of its own)."""
    client = connect_client(Settings.from_env({"REDIS_URL": url}))
    assert client is not None
    wire = Wire()
    wire.attach(client)
    link = RedisLink(
        client, Metrics(), timeout_s=1.0, breaker_failures=failures, breaker_cooldown_s=60.0
    )
    assert await link.get("warm", "warm-up") is None
    wire.sends = 0
    return link, wire


async def test_many_gets_and_many_sets_take_one_round_trip_each(valkey_url: str) -> None:
    link, wire = await _link(valkey_url)
    try:
        await link.set_many([Write("a", b"1", 30.0), Write("b", b"2", 20.0)])
        assert wire.sends == 1
        assert await link.get_many("l2", ["a", "missing", "b"]) == [b"1", None, b"2"]
        assert wire.sends == 2
        assert await link.get_many("l2", ["a"]) == [b"1"]  # one key: a plain GET
        await link.set_many([])  # nothing to write: no call
        assert wire.sends == 3
        async with aioredis.Redis.from_url(valkey_url) as observer:
            assert 20_000 < await observer.pttl("a") <= 30_000
            assert 0 < await observer.pttl("b") <= 20_000
        assert Write("c", b"", 0.0001).px == 1  # PX 0 would be an error reply
    finally:
        await link.aclose()


async def test_an_error_reply_fails_the_whole_pipeline_as_one_call(valkey_url: str) -> None:
    link, wire = await _link(valkey_url, failures=2)
    try:
        async with aioredis.Redis.from_url(valkey_url) as observer:
            await observer.set("fine", b"x")
            await observer.rpush("a-list", b"x")  # GET of a list: WRONGTYPE
        assert await link.get_many("l2", ["fine", "a-list"]) is SKIPPED
        assert total(link.metrics.redis_errors, op="l2") == 1
        assert state(link) == "closed"  # one failure of the two it takes
        await link.set_many([Write("fine", b"y", 30.0), Write("other", b"z", 30.0)])
        assert await link.get_many("l2", ["fine", "other"]) == [b"y", b"z"]
        assert await link.get_many("l2", ["a-list", "fine"]) is SKIPPED
        assert await link.get_many("l2", ["a-list", "fine"]) is SKIPPED
        assert state(link) == "open"  # two consecutive failures
        # open: skipped without a round trip, counted once per call
        sends = wire.sends
        assert await link.get_many("l2", ["fine", "other"]) is SKIPPED
        await link.set_many([Write("fine", b"w", 30.0), Write("other", b"w", 30.0)])
        assert wire.sends == sends
        assert total(link.metrics.redis_skipped) == 1 + 1
        assert total(link.metrics.redis_errors, op="l2") == 3
    finally:
        await link.aclose()


async def test_a_pipeline_that_times_out_is_skipped_and_frees_its_connection(
    valkey_url: str,
) -> None:
    link, wire = await _link(valkey_url)
    link.timeout_s = 0.05
    try:
        wire.stall_gets_s = 1.0
        assert await link.get_many("l2", ["a", "b"]) is SKIPPED
        assert total(link.metrics.redis_errors, op="l2") == 1
        wire.stall_gets_s = 0.0
        # the pool got its connection back in a usable state
        await link.set_many([Write("a", b"1", 30.0), Write("b", b"2", 30.0)])
        assert await link.get_many("l2", ["a", "b"]) == [b"1", b"2"]
        assert state(link) == "closed"
    finally:
        await link.aclose()


async def test_replies_are_parsed_by_hiredis(valkey_url: str) -> None:
    # redis[hiredis]: the C parser, less Python per reply (a Python fallback would be silent)
    client = connect_client(Settings.from_env({"REDIS_URL": valkey_url}))
    assert client is not None
    try:
        pool = client.connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        assert isinstance(conn._parser, _AsyncHiredisParser), type(conn._parser)
    finally:
        await client.aclose()


@pytest.mark.parametrize(("timeout_ms", "last_resort_s"), [(50, 1.0), (2000, 2.0)])
async def test_the_pools_own_timeouts_are_the_last_resort_cap(
    timeout_ms: int, last_resort_s: float
) -> None:
    # not the call's timeout: redis-py's timers would fail a reply read behind a busy
    # loop (RedisLink's deadline tolerates that lag, up to this cap)
    client = connect_client(
        Settings.from_env(
            {"REDIS_URL": "redis://127.0.0.1:1/0", "SEARCH_REDIS_TIMEOUT_MS": str(timeout_ms)}
        )
    )
    assert client is not None
    try:
        pool = client.connection_pool
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert pool.timeout == last_resort_s  # the wait for a free pooled connection
        assert pool.connection_kwargs["socket_timeout"] is None  # no wait_for per send
        assert pool.connection_kwargs["socket_connect_timeout"] == last_resort_s
    finally:
        await client.aclose()
