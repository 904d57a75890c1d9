"""The per-worker bounds: refusals beyond the limit, 0 disables, release on error; a
stream's query waits its turn for a unit (in order, bounded), then is refused."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.errors import Unavailable
from service.limits import RETRY_AFTER_S, Bound


def test_bound_admits_up_to_its_limit_then_refuses_and_counts() -> None:
    refused: list[int] = []
    bound = Bound(2, "open streams", on_refused=lambda: refused.append(1))
    assert bound.try_acquire()
    assert bound.try_acquire()
    assert not bound.try_acquire()
    assert refused == [1]
    bound.release()
    assert bound.try_acquire()
    assert (bound.held, bound.peak) == (2, 2)


def test_zero_means_unbounded() -> None:
    bound = Bound(0, "search requests in flight")
    for _ in range(10_000):
        assert bound.try_acquire()
    assert bound.held == bound.peak == 10_000


def test_hold_raises_a_503_naming_the_bound_and_releases_on_error() -> None:
    bound = Bound(1, "search requests in flight")
    with bound.hold():
        with pytest.raises(Unavailable) as info, bound.hold():
            pass  # pragma: no cover - never entered
        assert str(info.value) == "overloaded: more than 1 search requests in flight"
        assert info.value.retry_after_s == RETRY_AFTER_S
    assert bound.held == 0
    with pytest.raises(RuntimeError), bound.hold():
        raise RuntimeError("the work failed")
    assert bound.held == 0


def test_release_without_acquire_is_a_programming_error() -> None:
    with pytest.raises(AssertionError, match="without an acquire"):
        Bound(1, "open streams").release()


# ---------------------------------------------------------------- a stream's query waits


async def test_a_waiting_holder_gets_the_next_unit_in_order() -> None:
    bound = Bound(1, "search requests in flight")
    order: list[str] = []

    async def work(name: str, release: asyncio.Event) -> None:
        async with bound.hold_waiting(5.0):
            order.append(name)
            await release.wait()

    gates = {name: asyncio.Event() for name in "abc"}
    tasks = [asyncio.ensure_future(work(name, gates[name])) for name in "abc"]
    await asyncio.sleep(0.01)
    assert order == ["a"]
    assert bound.held == 1
    assert not bound.try_acquire()  # a request does not jump the queue of waiters
    gates["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    assert bound.held == 1
    gates["b"].set()
    gates["c"].set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert bound.held == 0
    assert bound.peak == 1


async def test_a_wait_that_runs_out_is_a_counted_503_and_holds_nothing() -> None:
    refused: list[int] = []
    bound = Bound(1, "search requests in flight", on_refused=lambda: refused.append(1))
    assert bound.try_acquire()
    start = time.perf_counter()
    with pytest.raises(Unavailable, match="more than 1 search requests in flight"):
        async with bound.hold_waiting(0.05):
            pass  # pragma: no cover - never entered
    assert 0.05 <= time.perf_counter() - start < 1.0
    assert refused == [1]
    bound.release()
    assert bound.held == 0
    assert bound.try_acquire()  # the expired waiter left no claim behind


async def test_a_cancelled_waiter_passes_its_unit_on() -> None:
    bound = Bound(1, "search requests in flight")
    assert bound.try_acquire()
    entered: list[str] = []

    async def wait(name: str) -> None:
        async with bound.hold_waiting(5.0):
            entered.append(name)

    gone = asyncio.ensure_future(wait("gone"))
    stays = asyncio.ensure_future(wait("stays"))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0)
    bound.release()
    await stays
    assert entered == ["stays"]
    assert gone.cancelled()
    assert bound.held == 0


async def test_hold_waiting_on_a_free_or_unbounded_bound_does_not_wait() -> None:
    for bound in (Bound(2, "search requests in flight"), Bound(0, "search requests in flight")):
        async with bound.hold_waiting(0.0):
            assert bound.held == 1
        assert bound.held == 0
