"""``service.breaker.CircuitBreaker``: every transition of its table, with a fake clock."""

from __future__ import annotations

import pytest

from service.cache.redis import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    failures: int = 3, cooldown_s: float = 2.0
) -> tuple[CircuitBreaker, FakeClock, list[BreakerState]]:
    clock = FakeClock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(failures, cooldown_s, clock=clock, on_change=changes.append)
    return breaker, clock, changes


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read the state through a call: mypy would otherwise narrow the property."""
    return breaker.state


def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failures):
        assert breaker.allow()
        breaker.failure()


def test_starts_closed_and_allows() -> None:
    breaker, _, changes = make()
    assert state(breaker) == "closed"
    assert breaker.allow()
    assert changes == []


def test_opens_after_n_consecutive_failures_only() -> None:
    breaker, _, changes = make(failures=3)
    breaker.failure()
    breaker.failure()
    assert state(breaker) == "closed"
    breaker.failure()
    assert state(breaker) == "open"
    assert not breaker.allow()
    assert changes == ["open"]


def test_a_success_resets_the_failure_count() -> None:
    breaker, _, _ = make(failures=3)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert state(breaker) == "closed"


def test_stays_open_until_the_cooldown_ends() -> None:
    breaker, clock, _ = make(cooldown_s=2.0)
    open_it(breaker)
    clock.now += 1.999
    assert state(breaker) == "open"
    assert not breaker.allow()
    clock.now += 0.001
    assert state(breaker) == "half_open"


def test_half_open_lets_one_probe_through() -> None:
    breaker, clock, changes = make()
    open_it(breaker)
    clock.now += 2.0
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # others skip while it runs
    assert not breaker.allow()
    assert changes == ["open", "half_open"]


def test_probe_success_closes() -> None:
    breaker, clock, changes = make()
    open_it(breaker)
    clock.now += 2.0
    assert breaker.allow()
    breaker.success()
    assert state(breaker) == "closed"
    assert breaker.allow()
    assert changes == ["open", "half_open", "closed"]


def test_probe_failure_reopens_for_a_new_cooldown() -> None:
    breaker, clock, changes = make(cooldown_s=2.0)
    open_it(breaker)
    clock.now += 2.0
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) == "open"
    clock.now += 1.5  # counted from the probe's failure, not the first opening
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()
    assert changes == ["open", "half_open", "open", "half_open"]


def test_failures_while_open_do_not_extend_state_changes() -> None:
    breaker, _, changes = make()
    open_it(breaker)
    breaker.failure()  # a call already in flight when it opened
    assert state(breaker) == "open"
    assert changes == ["open"]  # no duplicate notification


def test_default_clock_is_monotonic_and_usable() -> None:
    breaker = CircuitBreaker(1, 60.0)
    breaker.failure()
    assert state(breaker) == "open"
    assert not breaker.allow()


@pytest.mark.parametrize(
    ("failures", "cooldown_s", "message"),
    [(0, 1.0, "failures=0 is invalid"), (1, 0.0, "cooldown_s=0.0 is invalid")],
)
def test_bad_arguments_are_refused(failures: int, cooldown_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(failures, cooldown_s)
