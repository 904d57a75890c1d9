"""A measured fault for calibration: every search costs a share more CPU than searches cost.

``SEARCH_DEBUG_CPU_SLOWDOWN=0.10`` makes each ``/v1/search*`` request spin, when it is
done, for 10 % of the CPU time this process spends per request: a *multiplicative*
slowdown, the kind a real regression is (a slower serializer, an extra copy), not a fixed
delay that vanishes in the noise of a slow request or dominates a fast one. Off (0) by
default.

"CPU per request" is the process's CPU time (``time.process_time``: every thread, the
embedding model's included) over the requests it answered, the spinning itself left out,
re-estimated every :data:`WINDOW` requests. Why not the request's own coroutine steps
(``time.thread_time`` around each step): measured on the gate's MiniLM mix they are a few
percent of the process's CPU per request (the embedding runs in the batcher's task, the
database protocol and the HTTP parser in callbacks), so 0.10 of them moved CPU per request
by +0.5 %, not +10 %.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

SEARCH_PREFIX = "/v1/search"
WINDOW = 50  # requests per re-estimate of the CPU per request


def burn(cpu_s: float) -> None:
    """Spin on this thread until it has used ``cpu_s`` more CPU seconds."""
    end = time.thread_time() + cpu_s
    x = 0
    while time.thread_time() < end:
        for i in range(200):
            x ^= i * i


class CpuSlowdownMiddleware:
    """Pure ASGI middleware: /v1/search* requests burn ``slowdown`` x the CPU per request."""

    def __init__(self, app: ASGIApp, slowdown: float) -> None:
        assert 0 <= slowdown <= 10, f"slowdown must lie in [0, 10], got {slowdown}"
        self.app = app
        self.slowdown = slowdown
        self.per_request: float | None = None  # CPU seconds per request, spinning left out
        self._mark = time.process_time()
        self._burnt = 0.0  # spun since the mark
        self._requests = 0  # answered since the mark

    def _observe(self) -> None:
        self._requests += 1
        if self._requests < WINDOW:
            return
        now = time.process_time()
        self.per_request = max(0.0, now - self._mark - self._burnt) / self._requests
        self._mark, self._burnt, self._requests = now, 0.0, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.slowdown or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._observe()
            if self.per_request is not None and scope["path"].startswith(SEARCH_PREFIX):
                cost = self.per_request * self.slowdown
                burn(cost)
                self._burnt += cost
