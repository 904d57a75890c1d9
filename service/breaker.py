"""A circuit breaker for the cache's Redis calls.

The cache is an optimisation: when Redis is down or slow, requests must be answered from
PostgreSQL at full speed rather than each paying a timeout. After ``failures``
consecutive errors the breaker opens and every call is skipped at once; after
``cooldown_s`` one call is let through (half-open) to probe; its success closes the
breaker, its failure opens it for another cooldown.

=========  =====================================  ==================================
state      a call is                               next state
=========  =====================================  ==================================
closed     attempted                               open after N consecutive failures
open       skipped (cache miss) until cooldown     half_open when the cooldown ends
half_open  attempted by one probe; others skip     closed on success, open on failure
=========  =====================================  ==================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
STATE_CODES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Counts consecutive failures; not thread-safe (one per event loop)."""

    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures={failures} is invalid: expected >= 1")
        if cooldown_s <= 0:
            raise ValueError(f"cooldown_s={cooldown_s} is invalid: expected > 0")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            self._set("half_open")
        return self._state

    def allow(self) -> bool:
        """May a call be attempted now? In half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._consecutive = 0
        self._probing = False
        if self._state != "closed":
            self._set("closed")

    def failure(self) -> None:
        self._consecutive += 1
        was_probe = self._probing
        self._probing = False
        if was_probe or self._state == "half_open" or self._consecutive >= self.failures:
            self._opened_at = self._clock()
            if self._state != "open":
                self._set("open")

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
