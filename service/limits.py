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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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

    def try_acquire(self) -> bool:
        if self.limit and self.held >= self.limit:
            if self.on_refused is not None:
                self.on_refused()
            return False
        self.held += 1
        self.peak = max(self.peak, self.held)
        return True

    def release(self) -> None:
        assert self.held > 0, f"release of {self.what} without an acquire"
        self.held -= 1

    @property
    def message(self) -> str:
        return f"overloaded: more than {self.limit} {self.what}"

    def refusal(self) -> Unavailable:
        return Unavailable(self.message, retry_after_s=RETRY_AFTER_S)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """The block holds one unit; a full bound raises :class:`Unavailable` (503)."""
        if not self.try_acquire():
            raise self.refusal()
        try:
            yield
        finally:
            self.release()
