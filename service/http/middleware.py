"""ASGI middleware: request metrics by route template, and load shedding.

:class:`MetricsMiddleware` counts and times every request under a bounded set of route
labels. :class:`LoadShedMiddleware`: beyond a bound, answer 503 with Retry-After at once.

A worker that queues every request it accepts turns overload into latency for everyone
(and memory for the queue); shedding the excess keeps the admitted requests fast and
tells the client when to come back. The bounds are per worker process
(:mod:`service.limits`). Health, readiness, metrics and the other routes are never
shed: an orchestrator must still see the worker alive.

=====================  ====================================================================
path                   bound, held for the whole response
=====================  ====================================================================
/v1/search             ``SEARCH_MAX_IN_FLIGHT`` (query work; 0: off)
/v1/search/stream      ``SEARCH_MAX_STREAMS`` (open streams; 0: off); the stream's query
                       takes a unit of ``SEARCH_MAX_IN_FLIGHT`` only while it runs
                       (service.stream_search), never while the stream sends or idles
=====================  ====================================================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.limits import RETRY_AFTER_S, Bound
from service.metrics import Metrics

SHED_PREFIX = "/v1/search"
STREAM_PATH = "/v1/search/stream"


class LoadShedMiddleware:
    """Pure ASGI middleware: /v1/search* requests beyond their bound get 503 at once."""

    def __init__(
        self, app: ASGIApp, queries: Bound, streams: Bound, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.queries = queries
        self.streams = streams
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SHED_PREFIX):
            await self.app(scope, receive, send)
            return
        stream = scope["path"] == STREAM_PATH
        bound = self.streams if stream else self.queries
        if not bound.try_acquire():
            await _overloaded(send, bound.message)
            return
        if stream and self.metrics is not None:
            self.metrics.streams_open.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            bound.release()
            if stream and self.metrics is not None:
                self.metrics.streams_open.dec()


async def _overloaded(send: Send, message: str) -> None:
    body = orjson.dumps({"error": {"message": message}})
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
