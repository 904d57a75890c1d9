"""GETs of one loop turn travel as one MGET and writes go behind in pipelines, against a real
Valkey: a burst takes one connection and one round trip, a lone GET or SET stays itself, a
failed batch is one failed call, and a caller that goes away leaves the batch to the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ci import stack
from service.cache.getbatch import WriteBehind
from service.cache.redis import SKIPPED, RedisLink, Write, connect_client
from service.metrics import Metrics
from service.settings import Settings
from tests.service.cache.wire import Wire, total

pytestmark = [pytest.mark.stack, pytest.mark.timeout(60)]


@pytest.fixture
async def link(valkey_url: str) -> AsyncIterator[RedisLink]:
    client = connect_client(Settings.from_env({"REDIS_URL": valkey_url}))
    assert client is not None
    link = RedisLink(client, Metrics(), timeout_s=0.05, breaker_failures=5, breaker_cooldown_s=60.0)
    try:
        yield link
    finally:
        await link.aclose()


async def _calls(url: str) -> dict[str, int]:
    async with aioredis.Redis.from_url(url) as observer:
        stats: dict[str, Any] = await observer.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


async def test_a_burst_of_gets_is_one_mget_on_one_round_trip(
    link: RedisLink, valkey_url: str
) -> None:
    assert link.client is not None
    wire = Wire()
    wire.attach(link.client)  # before the first connection: it counts every send
    for i in range(0, 200, 2):
        await link.client.set(f"k{i}", f"v{i}".encode())
    wire.sends = 0
    before = await _calls(valkey_url)
    got = await asyncio.gather(*[link.get("l2", f"k{i}") for i in range(200)])
    after = await _calls(valkey_url)
    assert got == [f"v{i}".encode() if i % 2 == 0 else None for i in range(200)]
    assert wire.sends == 1
    assert after.get("mget", 0) - before.get("mget", 0) == 1
    assert after.get("get", 0) - before.get("get", 0) == 0


async def test_a_lone_get_stays_a_get(link: RedisLink, valkey_url: str) -> None:
    assert link.client is not None
    await link.client.set("one", b"1")
    before = await _calls(valkey_url)
    assert await link.get("l2", "one") == b"1"
    assert await link.get("l2", "two") is None
    after = await _calls(valkey_url)
    assert after.get("get", 0) - before.get("get", 0) == 2
    assert after.get("mget", 0) - before.get("mget", 0) == 0


async def test_a_failed_batch_is_one_failed_call_and_every_caller_gets_a_miss() -> None:
    # nothing listens on the port: the batch's one call fails, every caller gets a miss
    url = f"redis://127.0.0.1:{stack.free_port()}/0"
    client = connect_client(Settings.from_env({"REDIS_URL": url}))
    assert client is not None
    link = RedisLink(client, Metrics(), timeout_s=0.5, breaker_failures=5, breaker_cooldown_s=60)
    try:
        got = await asyncio.gather(*[link.get("l2", f"k{i}") for i in range(10)])
        assert got == [SKIPPED] * 10
        assert total(link.metrics.redis_errors) == 1
    finally:
        await link.aclose()


async def test_a_cancelled_caller_leaves_the_batch_to_the_others(link: RedisLink) -> None:
    assert link.client is not None
    await link.client.set("kept", b"yes")
    gone = asyncio.ensure_future(link.get("l2", "kept"))
    stays = asyncio.ensure_future(link.get("l2", "kept"))
    await asyncio.sleep(0)  # both are in the batch
    gone.cancel()
    assert await stays == b"yes"
    assert gone.cancelled()


async def test_the_writes_of_one_turn_are_one_pipeline(link: RedisLink, valkey_url: str) -> None:
    assert link.client is not None
    wire = Wire()
    wire.attach(link.client)
    assert await link.get("l2", "warm-up") is None
    wire.sends = 0
    writes = [link.set(f"w{i}", f"x{i}".encode(), 30.0) for i in range(100)]
    pairs = [[Write(f"p{i}", b"a", 30.0), Write(f"q{i}", b"b", 30.0)] for i in range(20)]
    await asyncio.gather(*writes, *(link.set_many(p) for p in pairs))
    assert wire.sends == 1  # 140 SETs, one round trip
    assert await link.client.get("w7") == b"x7"
    assert await link.client.get("q19") == b"b"
    assert 0 < await link.client.pttl("w99") <= 30_000


async def test_a_lone_write_stays_a_set(link: RedisLink, valkey_url: str) -> None:
    before = await _calls(valkey_url)
    await link.set("alone", b"1", 5.0)
    after = await _calls(valkey_url)
    assert after.get("set", 0) - before.get("set", 0) == 1
    assert link.client is not None
    assert await link.client.get("alone") == b"1"


# ---------------------------------------------------------------- writes behind responses


async def test_writes_behind_leave_after_the_interval_in_one_pipeline(
    link: RedisLink, valkey_url: str
) -> None:
    assert link.client is not None
    wire = Wire()
    wire.attach(link.client)
    assert await link.get("l2", "warm-up") is None
    wire.sends = 0
    link.set_behind([Write("b1", b"1", 30.0)])
    await asyncio.sleep(0)
    link.set_behind([Write("b2", b"2", 30.0), Write("b3", b"3", 30.0)])
    await asyncio.sleep(0.001)
    assert wire.sends == 0  # waiting for the interval (5 ms) or the batch size (16)
    for _ in range(100):
        await asyncio.sleep(0.005)
        if wire.sends:
            break
    assert wire.sends == 1  # three writes of two turns, one pipeline
    assert await link.client.mget("b1", "b2", "b3") == [b"1", b"2", b"3"]


async def test_a_full_batch_leaves_at_the_end_of_its_turn() -> None:
    sent: list[list[int]] = []

    async def send(batch: list[int]) -> None:
        sent.append(batch)

    behind: WriteBehind[int] = WriteBehind(send, interval_s=60.0, batch=16, max_pending=64)
    for i in range(20):
        assert behind.put([i]) is None  # nobody waits
    assert sent == []
    await asyncio.sleep(0.01)  # the turn ended: the 20 writes went, long before 60 s
    assert sent == [list(range(20))]
    assert len(behind) == 0


async def test_a_waiting_writer_sends_at_the_end_of_the_turn_with_what_is_queued() -> None:
    sent: list[list[int]] = []

    async def send(batch: list[int]) -> None:
        sent.append(batch)

    behind: WriteBehind[int] = WriteBehind(send, interval_s=60.0, batch=16, max_pending=64)
    behind.put([1, 2])
    done = behind.put([3], wait=True)
    assert done is not None
    await asyncio.wait_for(done, 1.0)
    assert sent == [[1, 2, 3]]


async def test_writes_beyond_the_bound_are_dropped_and_counted() -> None:
    sent: list[list[int]] = []
    dropped: list[int] = []

    async def send(batch: list[int]) -> None:
        sent.append(batch)

    behind: WriteBehind[int] = WriteBehind(
        send, interval_s=0.005, batch=16, max_pending=16, on_drop=dropped.append
    )
    behind.put(list(range(10)))
    assert behind.put(list(range(7)), wait=True) is None  # 17 > 16: dropped whole
    assert dropped == [7]
    assert len(behind) == 10
    await behind.drain(1.0)
    assert sent == [list(range(10))]
