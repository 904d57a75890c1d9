"""ASGI middleware: request metrics by route template, and load shedding, in one layer.

:class:`RequestMiddleware` counts and times every request under a bounded set of route
labels (shed requests included) and, beyond a bound, answers 503 with Retry-After at
once. One layer, not two: each costs every request a call and a ``send`` wrapper.

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


class RequestMiddleware:
    """Pure ASGI middleware: every request counted and timed by route template (bounded
    label cardinality, whatever clients send); /v1/search* requests beyond their bound
    get 503 at once. ``request_delay_ms`` (a debug knob) delays /v1/search* requests
    before they take a unit of their bound."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        queries: Bound,
        streams: Bound,
        request_delay_ms: int,
        known_paths: Collection[str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.queries = queries
        self.streams = streams
        self.delay = request_delay_ms / 1000
        self.known_paths = frozenset(known_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        metrics = self.metrics
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        metrics.in_flight.inc()
        try:
            if path.startswith(SHED_PREFIX):
                if not await self._bounded(path, scope, receive, send, send_wrapper):
                    status = 503
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            metrics.in_flight.dec()
            route = route_label(path, self.known_paths)
            metrics.latency.labels(route).observe(time.perf_counter() - start)
            metrics.requests.labels(route, scope["method"], str(status)).inc()

    async def _bounded(
        self, path: str, scope: Scope, receive: Receive, send: Send, wrapped: Send
    ) -> bool:
        """Run a /v1/search* request under its bound (``wrapped`` records its status);
        False: shed, answered 503 at once."""
        if self.delay:
            await asyncio.sleep(self.delay)
        stream = path == STREAM_PATH
        bound = self.streams if stream else self.queries
        if not bound.try_acquire():
            await _overloaded(send, bound.message)
            return False
        if stream:
            self.metrics.streams_open.inc()
        try:
            await self.app(scope, receive, wrapped)
        finally:
            bound.release()
            if stream:
                self.metrics.streams_open.dec()
        return True


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
