"""Per-worker bounds on concurrent work: beyond a bound, 503 with Retry-After at once.

Two bounds, because they protect different things:

=========================  =================================  ===============================
bound                      counts                             protects
=========================  =================================  ===============================
``SEARCH_MAX_IN_FLIGHT``   /v1/search requests, whole          CPU, the pool and PostgreSQL:
                           request; a stream only while its    query work queued behind query
                           query runs (the one computing for   work turns overload into
                           a key, not the streams joining it)  latency for everyone
``SEARCH_MAX_STREAMS``     open /v1/search/stream responses,   sockets, file descriptors and
                           first byte to last                  send buffers
=========================  =================================  ===============================

A stream that is sending (its query done, its connection released) costs no query work,
so it must not take a slot that a search needs; an idle stream costs a socket and a send
buffer, which the stream bound caps. The worker runs one event loop: no lock.

A stream's query queues for a unit (:meth:`Bound.hold_queued`, first come first served)
rather than being refused at once: its client is connected already, and would rather wait
a few seconds than be told to come back and add load. The queue is bounded by its *work*,
not by the time a stream waits: a stream is admitted while the queue's estimated wait
(:meth:`Bound.estimated_wait_s`: the streams ahead times the measured time per unit)
stays within ``SEARCH_STREAM_MAX_QUEUE_WAIT_S``, and refused beyond it with a 503 that
says so. A queued stream does no query work, so the bound still caps the work; a burst
of distinct streams (a reconnect storm) is served in turn instead of bouncing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

from service.errors import Unavailable

RETRY_AFTER_S = 1
HOLD_EWMA_ALPHA = 0.1  # weight of the latest hold in the time per unit


class Bound:
    """At most ``limit`` holders at once (0: unbounded); ``on_refused`` counts refusals."""

    def __init__(self, limit: int, what: str, on_refused: Callable[[], None] | None = None) -> None:
        assert limit >= 0, f"limit must be >= 0, got {limit}"
        self.limit = limit
        self.what = what  # plural noun phrase for the 503 message: "search requests in flight"
        self.on_refused = on_refused
        self.held = 0
        self.peak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # hold_queued, in order
        self.queued = 0  # waiters still waiting (the deque may keep cancelled ones)
        self.hold_s: float | None = None  # moving average of a hold_queued hold

    def try_acquire(self) -> bool:
        if self.limit and (self.held >= self.limit or self._waiters):
            if self.on_refused is not None:
                self.on_refused()
            return False
        self.held += 1
        self.peak = max(self.peak, self.held)
        return True

    def release(self) -> None:
        assert self.held > 0, f"release of {self.what} without an acquire"
        while self._waiters:  # the unit goes straight to the first waiter still waiting
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.held -= 1

    @property
    def message(self) -> str:
        return f"overloaded: more than {self.limit} {self.what}"

    def refusal(self) -> Unavailable:
        return Unavailable(self.message, retry_after_s=RETRY_AFTER_S)

    def estimated_wait_s(self, position: int) -> float:
        """Seconds until the waiter at ``position`` (1: the next) gets a unit.

        By Little's law a bound whose ``limit`` units are all held, each for ``hold_s``
        on average, hands out a unit every ``hold_s / limit`` seconds. 0 before any hold
        was measured: the first burst is admitted whole, and measured as it runs.
        """
        if not self.limit or self.hold_s is None:
            return 0.0
        return position * self.hold_s / self.limit

    def observe(self, seconds: float) -> None:
        """Count one hold of ``seconds`` into the moving average of the time per unit."""
        if self.hold_s is None:
            self.hold_s = seconds
        else:
            self.hold_s += HOLD_EWMA_ALPHA * (seconds - self.hold_s)

    def queue_refusal(self, wait_s: float, max_wait_s: float) -> Unavailable:
        message = (
            f"overloaded: {self.queued} queued stream searches ahead would wait about "
            f"{wait_s:.1f} s, more than the {max_wait_s:g} s a stream may queue "
            "(SEARCH_STREAM_MAX_QUEUE_WAIT_S)"
        )
        return Unavailable(message, retry_after_s=max(RETRY_AFTER_S, math.ceil(wait_s)))

    @contextlib.asynccontextmanager
    async def hold_queued(self, max_wait_s: float) -> AsyncIterator[None]:
        """The block holds one unit, timed (:meth:`observe`); a full bound is queued for
        (in order) when the estimated wait is at most ``max_wait_s``, else refused with
        :class:`Unavailable` (503), counted. A queued holder waits until its turn or its
        cancellation (its client gone), whichever comes first."""
        if not self.limit or (self.held < self.limit and not self._waiters):
            self.held += 1
            self.peak = max(self.peak, self.held)
        else:
            wait_s = self.estimated_wait_s(self.queued + 1)
            if wait_s > max_wait_s:
                if self.on_refused is not None:
                    self.on_refused()
                raise self.queue_refusal(wait_s, max_wait_s)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self.queued += 1
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # handed a unit we will not use: pass it on
                else:
                    waiter.cancel()  # release() skips it
                raise
            finally:
                self.queued -= 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start)
            self.release()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """The block holds one unit; a full bound raises :class:`Unavailable` (503)."""
        if not self.try_acquire():
            raise self.refusal()
        try:
            yield
        finally:
            self.release()
