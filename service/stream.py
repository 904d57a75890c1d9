"""Server-Sent Events whose headers leave together with the first event.

Starlette's StreamingResponse sends its headers before the body iterator yields, so a
client's time-to-first-byte would measure nothing. Here the route awaits the first event
itself (errors before it become ordinary JSON error responses), and this response sends
the start message and that event back to back. A client that disconnects cancels the
producer, which cancels the database query behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

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
