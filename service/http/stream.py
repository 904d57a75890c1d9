"""Server-Sent Events whose headers leave together with the first event; the SSE framing.

Every SSE byte the service sends is framed here: :func:`search_events` turns a search's
batches into ``results`` events, then ``done`` (or ``error`` if the stream fails midway).

Starlette's StreamingResponse sends its headers before the body iterator yields, so a
client's time-to-first-byte would measure nothing. Here the route awaits the first event
itself (errors before it become ordinary JSON error responses), and this response sends
the start message and that event back to back. A client that disconnects cancels the
producer, which cancels the database query behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from service.errors import ServiceError
from service.model import Hit

log = logging.getLogger("service")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(event: str, data: Any) -> bytes:
    """One SSE frame; data is JSON on a single line (orjson never emits newlines)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventStreamResponse:
    """ASGI response: ``first`` is already produced; ``rest`` yields the following frames."""

    def __init__(
        self,
        first: bytes,
        rest: AsyncIterator[bytes],
        *,
        on_disconnect: Callable[[], None] | None = None,
        on_error: Callable[[BaseException], bytes] | None = None,
    ) -> None:
        self.first = first
        self.rest = rest
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        producer = asyncio.create_task(self._produce(send))
        watcher = asyncio.create_task(self._watch(receive))
        try:
            done, _ = await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done and not producer.done():
                producer.cancel()
                if self.on_disconnect is not None:
                    self.on_disconnect()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await producer
        finally:
            for task in (producer, watcher):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            aclose = getattr(self.rest, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def _produce(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": self.first, "more_body": True})
        try:
            async for frame in self.rest:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.on_error is None:
                raise
            frame = self.on_error(exc)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def search_events(
    batches: AsyncGenerator[Sequence[Hit], None],
    *,
    on_disconnect: Callable[[], None] | None = None,
) -> EventStreamResponse:
    """The response to a streamed search: awaits the first batch before any header.

    An error before the first batch propagates (an ordinary JSON error response); after
    it, an ``error`` event ends the stream.
    """
    start = time.perf_counter()
    counter = {"count": 0, "batch": 0}

    def elapsed_ms() -> float:
        return round((time.perf_counter() - start) * 1000, 3)

    def frame(hits: Sequence[Hit]) -> bytes:
        counter["count"] += len(hits)
        data = {
            "batch": counter["batch"],
            "elapsed_ms": elapsed_ms(),
            "results": [h.as_dict() for h in hits],
        }
        counter["batch"] += 1
        return sse_event("results", data)

    def done() -> bytes:
        return sse_event(
            "done",
            {"count": counter["count"], "batches": counter["batch"], "took_ms": elapsed_ms()},
        )

    first_batch = await anext(batches, None)
    if first_batch is None:
        await batches.aclose()
        first = done()

        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""  # pragma: no cover - makes this an async generator

        return EventStreamResponse(first, nothing())
    first = frame(first_batch)

    async def rest() -> AsyncIterator[bytes]:
        try:
            async for hits in batches:
                yield frame(hits)
            yield done()
        finally:
            await batches.aclose()

    def on_error(exc: BaseException) -> bytes:
        log.warning("stream failed: %s", exc)
        message = str(exc) if isinstance(exc, ServiceError) else "internal error"
        return sse_event("error", {"message": message})

    return EventStreamResponse(first, rest(), on_disconnect=on_disconnect, on_error=on_error)
