"""The per-worker bounds: refusals beyond the limit, 0 disables, release on error; a
stream's query queues for a unit in order while the queue's estimated wait is within its
limit, and is refused beyond it."""

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


# ---------------------------------------------------------------- a stream's query queues


async def test_a_queued_holder_gets_the_next_unit_in_order() -> None:
    bound = Bound(1, "search requests in flight")
    order: list[str] = []

    async def work(name: str, release: asyncio.Event) -> None:
        async with bound.hold_queued(10.0):
            order.append(name)
            await release.wait()

    gates = {name: asyncio.Event() for name in "abc"}
    tasks = [asyncio.ensure_future(work(name, gates[name])) for name in "abc"]
    await asyncio.sleep(0.01)
    assert order == ["a"]
    assert (bound.held, bound.queued) == (1, 2)
    assert not bound.try_acquire()  # a request does not jump the queue of waiters
    gates["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    assert (bound.held, bound.queued) == (1, 1)
    gates["b"].set()
    gates["c"].set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert (bound.held, bound.queued, bound.peak) == (0, 0, 1)


async def test_a_queued_holder_waits_as_long_as_its_turn_takes() -> None:
    """The wait itself is not bounded: admitted with no hold measured yet (estimate 0),
    the waiter stays queued past any Retry-After until the unit comes."""
    bound = Bound(1, "search requests in flight")
    assert bound.try_acquire()
    entered = asyncio.Event()

    async def wait() -> None:
        async with bound.hold_queued(0.0):
            entered.set()

    task = asyncio.ensure_future(wait())
    await asyncio.sleep(RETRY_AFTER_S + 0.2)
    assert not entered.is_set()
    assert bound.queued == 1
    bound.release()
    await task
    assert bound.held == 0


def test_the_estimated_wait_is_the_position_times_the_hold_per_unit() -> None:
    bound = Bound(4, "search requests in flight")
    assert bound.estimated_wait_s(100) == 0.0  # nothing measured yet
    bound.observe(2.0)
    assert bound.hold_s == 2.0
    assert bound.estimated_wait_s(1) == 0.5  # 4 units each held 2 s: one every 0.5 s
    assert bound.estimated_wait_s(10) == 5.0
    bound.observe(12.0)
    assert bound.hold_s == pytest.approx(3.0)  # the average moves a tenth of the way
    assert Bound(0, "search requests in flight").estimated_wait_s(100) == 0.0


async def test_a_queue_estimated_beyond_the_limit_refuses_with_the_wait_in_the_503() -> None:
    refused: list[int] = []
    bound = Bound(2, "search requests in flight", on_refused=lambda: refused.append(1))
    bound.observe(1.0)  # one unit every 0.5 s
    assert bound.try_acquire()
    assert bound.try_acquire()
    gate = asyncio.Event()

    async def queued() -> None:
        async with bound.hold_queued(1.0):
            await gate.wait()

    admitted = [asyncio.ensure_future(queued()) for _ in range(2)]  # at 0.5 s and 1.0 s
    await asyncio.sleep(0.01)
    assert bound.queued == 2
    start = time.perf_counter()
    with pytest.raises(Unavailable) as info:
        async with bound.hold_queued(1.0):
            pass  # pragma: no cover - never entered
    assert time.perf_counter() - start < 0.05  # refused at once, not after a wait
    assert str(info.value) == (
        "overloaded: 2 queued stream searches ahead would wait about 1.5 s, more than "
        "the 1 s a stream may queue (SEARCH_STREAM_MAX_QUEUE_WAIT_S)"
    )
    assert info.value.retry_after_s == 2
    assert refused == [1]
    assert bound.queued == 2  # the refused one left nothing behind
    gate.set()
    bound.release()
    bound.release()
    await asyncio.gather(*admitted)
    assert (bound.held, bound.queued) == (0, 0)


async def test_a_hold_is_timed_into_the_estimate() -> None:
    bound = Bound(1, "search requests in flight")
    async with bound.hold_queued(10.0):
        await asyncio.sleep(0.05)
    assert bound.hold_s is not None
    assert 0.05 <= bound.hold_s < 0.5


async def test_a_cancelled_waiter_passes_its_unit_on() -> None:
    bound = Bound(1, "search requests in flight")
    assert bound.try_acquire()
    entered: list[str] = []

    async def wait(name: str) -> None:
        async with bound.hold_queued(10.0):
            entered.append(name)

    gone = asyncio.ensure_future(wait("gone"))
    stays = asyncio.ensure_future(wait("stays"))
    await asyncio.sleep(0.01)
    gone.cancel()
    await asyncio.sleep(0)
    assert bound.queued == 1
    bound.release()
    await stays
    assert entered == ["stays"]
    assert gone.cancelled()
    assert bound.held == 0


async def test_a_waiter_cancelled_after_it_was_handed_the_unit_passes_it_on() -> None:
    bound = Bound(1, "search requests in flight")
    assert bound.try_acquire()
    entered: list[str] = []

    async def wait(name: str) -> None:
        async with bound.hold_queued(10.0):
            entered.append(name)

    first = asyncio.ensure_future(wait("first"))
    second = asyncio.ensure_future(wait("second"))
    await asyncio.sleep(0.01)
    bound.release()  # hands the unit to "first", which has not run yet
    first.cancel()
    await second
    assert entered == ["second"]
    assert first.cancelled()
    assert (bound.held, bound.queued) == (0, 0)


async def test_hold_queued_on_a_free_or_unbounded_bound_does_not_wait() -> None:
    for bound in (Bound(2, "search requests in flight"), Bound(0, "search requests in flight")):
        async with bound.hold_queued(0.0):
            assert bound.held == 1
        assert bound.held == 0
