"""A measured fault for calibration: every search burns a share more CPU than it used.

``SEARCH_DEBUG_CPU_SLOWDOWN=0.10`` makes each ``/v1/search*`` request spin, when it is
done, for 10 % of the CPU time its own work took: a *multiplicative* slowdown, the kind a
real regression is (a slower serializer, an extra copy), not a fixed delay that vanishes
in the noise of a slow request or dominates a fast one. Off (0) by default.

"Its own work" is the thread CPU time (``time.thread_time``) spent inside the request's
coroutine: the event loop runs one coroutine step at a time, so the time of each step,
summed, is this request's share of the loop thread. Work the request hands to other tasks
or threads (the embedding batcher, the database server) is not counted, so the whole
process's CPU per request grows by less than the setting; ``perfci calibrate`` reports
the change it measured.
"""

from __future__ import annotations

import time
import types
from collections.abc import Coroutine, Generator
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

SEARCH_PREFIX = "/v1/search"


@types.coroutine
def _timed(coro: Coroutine[Any, Any, None], used: list[float]) -> Generator[Any, Any, None]:
    """Drive ``coro`` step by step, adding each step's thread CPU time to ``used[0]``."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        start = time.thread_time()
        try:
            yielded = coro.send(to_send) if to_throw is None else coro.throw(to_throw)
        except StopIteration:
            used[0] += time.thread_time() - start
            return
        except BaseException:
            used[0] += time.thread_time() - start
            raise
        used[0] += time.thread_time() - start
        to_send, to_throw = None, None
        try:
            to_send = yield yielded
        except BaseException as exc:  # cancellation and the like go on into the request
            to_throw = exc


def burn(cpu_s: float) -> None:
    """Spin on this thread until it has used ``cpu_s`` more CPU seconds."""
    end = time.thread_time() + cpu_s
    x = 0
    while time.thread_time() < end:
        for i in range(200):
            x ^= i * i


class CpuSlowdownMiddleware:
    """Pure ASGI middleware: /v1/search* requests burn ``slowdown`` times their own CPU."""

    def __init__(self, app: ASGIApp, slowdown: float) -> None:
        assert 0 <= slowdown <= 10, f"slowdown must lie in [0, 10], got {slowdown}"
        self.app = app
        self.slowdown = slowdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.slowdown
            or scope["type"] != "http"
            or not scope["path"].startswith(SEARCH_PREFIX)
        ):
            await self.app(scope, receive, send)
            return

        async def handle() -> None:
            await self.app(scope, receive, send)

        used = [0.0]
        try:
            await _timed(handle(), used)
        finally:
            burn(used[0] * self.slowdown)
