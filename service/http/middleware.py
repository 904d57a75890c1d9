"""ASGI middleware: request metrics by route template, and load shedding.

:class:`MetricsMiddleware` counts and times every request under a bounded set of route
labels. :class:`LoadShedMiddleware`: beyond a bound on search requests in flight, answer
503 at once.

A worker that queues every request it accepts turns overload into latency for everyone
(and memory for the queue); shedding the excess keeps the admitted requests fast and
tells the client when to come back. The bound is per worker process, counted over the
whole response (a stream is in flight until its last event). Health, readiness, metrics
and the other routes are never shed: an orchestrator must still see the worker alive.

=====================  =========================================================
SEARCH_MAX_IN_FLIGHT   behaviour
=====================  =========================================================
0                      shedding off
N > 0                  the (N+1)-th concurrent /v1/search* request gets 503
=====================  =========================================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

SHED_PREFIX = "/v1/search"
RETRY_AFTER_S = 1


class LoadShedMiddleware:
    """Pure ASGI middleware: refuses /v1/search* requests beyond ``max_in_flight``."""

    def __init__(self, app: ASGIApp, max_in_flight: int, on_shed: Callable[[], None]) -> None:
        assert max_in_flight >= 0, f"max_in_flight must be >= 0, got {max_in_flight}"
        self.app = app
        self.max_in_flight = max_in_flight
        self.on_shed = on_shed
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.max_in_flight
            or not scope["path"].startswith(SHED_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.on_shed()
            await _overloaded(send, self.max_in_flight)
            return
        # One event loop per worker: the counter needs no lock.
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _overloaded(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {"error": {"message": f"overloaded: more than {limit} search requests in flight"}}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def route_label(path: str, known_paths: Collection[str]) -> str:
    """The route template of ``path``: bounded label cardinality, whatever clients send."""
    if path in known_paths:
        return path
    if path.startswith("/v1/documents/"):
        return "/v1/documents/{id}"
    return "other"


class MetricsMiddleware:
    """Counts and times every request by route template (bounded label cardinality)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        request_delay_ms: int,
        known_paths: Collection[str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.delay = request_delay_ms / 1000
        self.known_paths = frozenset(known_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(scope["path"], self.known_paths)
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            if self.delay and route.startswith("/v1/search"):
                await asyncio.sleep(self.delay)
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
