"""Single-flight without a server: counts, errors, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from service.coalesce import SingleFlight

pytestmark = pytest.mark.timeout(10)


async def test_concurrent_callers_share_one_computation() -> None:
    calls = 0
    sizes: list[int] = []

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 42

    flight: SingleFlight[int] = SingleFlight(on_done=sizes.append)
    results = await asyncio.gather(*[flight.do("k", compute) for _ in range(10)])
    assert calls == 1
    assert [r for r, _ in results] == [42] * 10
    assert sum(joined for _, joined in results) == 9
    assert sizes == [10]


async def test_every_waiter_gets_the_same_error() -> None:
    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("db down")

    flight: SingleFlight[int] = SingleFlight()
    results = await asyncio.gather(
        *[flight.do("k", boom) for _ in range(5)], return_exceptions=True
    )
    assert all(isinstance(r, ValueError) and str(r) == "db down" for r in results)


async def test_cancelled_leader_does_not_fail_the_waiters() -> None:
    async def compute() -> str:
        await asyncio.sleep(0.05)
        return "ok"

    flight: SingleFlight[str] = SingleFlight()
    leader = asyncio.create_task(flight.do("k", compute))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flight.do("k", compute))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await waiter == ("ok", True)
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_disabled_computes_per_call() -> None:
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return calls

    flight: SingleFlight[int] = SingleFlight(enabled=False)
    await asyncio.gather(*[flight.do("k", compute) for _ in range(3)])
    assert calls == 3
