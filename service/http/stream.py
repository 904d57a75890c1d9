"""Server-Sent Events whose headers leave together with the first event; the SSE framing.

Every SSE byte the service sends is framed here: :func:`search_events` turns an encoded
search result (:mod:`service.stream_search`) into ``results`` events, one per batch, then
``done``.

The route awaits the result before any byte is sent, so errors before it are ordinary
JSON error responses (a 503 with Retry-After when overloaded), a client's time to first
byte is its time to first event, and no database connection is held while sending: the
result is complete in memory by then and every stream of it shares the same JSON bytes
of its batches (only each event's small envelope is built per stream).

A reader that stops reading fills the socket and the server's send buffer (uvicorn pauses
at 64 KiB); each send then waits, at most ``write_timeout_s``: beyond it the stream ends
unfinished, counted, and uvicorn closes the connection. So a stalled reader holds no
database connection, at most one send buffer of memory, and its slot of the stream bound
for at most the write timeout per send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from service.stream_search import EncodedResult

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(event: str, data: Any) -> bytes:
    """One SSE frame; data is JSON on a single line (orjson never emits newlines)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def results_event(batch: int, elapsed_ms: float, results_json: bytes) -> bytes:
    """``sse_event("results", {"batch", "elapsed_ms", "results"})`` around encoded results."""
    return b"".join(
        (
            b'event: results\ndata: {"batch":',
            str(batch).encode(),
            b',"elapsed_ms":',
            orjson.dumps(elapsed_ms),
            b',"results":',
            results_json,
            b"}\n\n",
        )
    )


class EventStreamResponse:
    """ASGI response sending ``frames``; each send may wait at most ``write_timeout_s``."""

    def __init__(
        self,
        frames: Iterator[bytes],
        *,
        write_timeout_s: float,
        on_write_timeout: Callable[[], None] | None = None,
    ) -> None:
        assert write_timeout_s > 0, f"write_timeout_s must be > 0, got {write_timeout_s}"
        self.frames = frames
        self.write_timeout_s = write_timeout_s
        self.on_write_timeout = on_write_timeout
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        limit = self.write_timeout_s
        try:
            # one timer for the whole stream, pushed back before each send
            async with asyncio.timeout(limit) as deadline:
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                for frame in self.frames:
                    deadline.reschedule(loop.time() + limit)
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                deadline.reschedule(loop.time() + limit)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            # the reader has not taken a send buffer's worth in write_timeout_s: give up;
            # uvicorn closes the connection of a response left unfinished
            if self.on_write_timeout is not None:
                self.on_write_timeout()


def search_events(
    result: EncodedResult,
    *,
    started: float,
    write_timeout_s: float,
    on_write_timeout: Callable[[], None] | None = None,
) -> EventStreamResponse:
    """The response to a streamed search; ``started`` (perf_counter) dates ``elapsed_ms``."""

    def elapsed_ms() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    # the frames hold the encoded batches only: a stream blocked on a slow reader keeps
    # neither the hits nor the cache entry alive
    batches, count = result.batches, result.count

    def frames() -> Iterator[bytes]:
        for i, results_json in enumerate(batches):
            yield results_event(i, elapsed_ms(), results_json)
        yield sse_event("done", {"count": count, "batches": len(batches), "took_ms": elapsed_ms()})

    return EventStreamResponse(
        frames(), write_timeout_s=write_timeout_s, on_write_timeout=on_write_timeout
    )


async def until_disconnect(work: asyncio.Future[Any], receive: Receive) -> bool:
    """Wait for ``work``; False (``work`` cancelled) if the client disconnects first.

    Cancelling a stream's wait never cancels a computation other streams share
    (:class:`service.coalesce.SingleFlight` shields it).
    """
    watcher: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if work.done():
        return True
    work.cancel()
    return False


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
