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

A stream's query may wait for a unit (:meth:`Bound.hold_waiting`, first come first
served, at most :data:`RETRY_AFTER_S`) before it is refused: its client is connected
already, and a 503 would only tell it to come back after that long. The waiting stream
does no query work, so the bound still caps the work; a burst of distinct streams just
queues for a second instead of bouncing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

from service.errors import Unavailable

RETRY_AFTER_S = 1


class Bound:
    """At most ``limit`` holders at once (0: unbounded); ``on_refused`` counts refusals."""

    def __init__(self, limit: int, what: str, on_refused: Callable[[], None] | None = None) -> None:
        assert limit >= 0, f"limit must be >= 0, got {limit}"
        self.limit = limit
        self.what = what  # plural noun phrase for the 503 message: "search requests in flight"
        self.on_refused = on_refused
        self.held = 0
        self.peak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # hold_waiting, in order

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

    @contextlib.asynccontextmanager
    async def hold_waiting(self, wait_s: float) -> AsyncIterator[None]:
        """The block holds one unit; a full bound is waited for (in order) up to ``wait_s``,
        then raises :class:`Unavailable` (503), counted as a refusal."""
        if not self.limit or (self.held < self.limit and not self._waiters):
            self.held += 1
            self.peak = max(self.peak, self.held)
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(wait_s):
                    await asyncio.shield(waiter)
            except TimeoutError:
                if not waiter.done():
                    waiter.cancel()  # release() skips it
                    if self.on_refused is not None:
                        self.on_refused()
                    raise self.refusal() from None
                # handed a unit as the wait ran out: take it
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # handed a unit we will not use: pass it on
                else:
                    waiter.cancel()
                raise
        try:
            yield
        finally:
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
