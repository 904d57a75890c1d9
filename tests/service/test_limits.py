"""The per-worker bounds: refusals beyond the limit, 0 disables, release on error."""

from __future__ import annotations

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
