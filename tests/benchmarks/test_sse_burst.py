"""The many-stream SSE client of benchmarks/sse_burst.py against a small asyncio server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from benchmarks.sse_burst import (
    BurstResult,
    Reader,
    StreamOutcome,
    burst,
    nearest_rank,
    parse_events,
)

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def _sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Three results of two events after 50 ms each, then done; chunked like uvicorn."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    await asyncio.sleep(0.05)
    writer.write(_chunk(_event("results", {"batch": 0, "results": [{"id": 1}, {"id": 2}]})))
    await asyncio.sleep(0.05)
    writer.write(_chunk(_event("results", {"batch": 1, "results": [{"id": 3}]})))
    writer.write(_chunk(_event("done", {"count": 3, "batches": 2})) + b"0\r\n\r\n")
    await writer.drain()
    writer.close()


async def _busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b'{"error":{"message":"overloaded: more than 1 open streams"}}'
    writer.write(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"retry-after: 1\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )
    await writer.drain()
    writer.close()


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _run(handler: Handler, n: int, reader: Reader) -> BurstResult:
    async for url in _serve(handler):
        return await burst(url, ["/s"] * n, reader)
    raise AssertionError("unreachable")


async def test_streams_are_read_whole_and_their_first_event_timed() -> None:
    result = await _run(_sse, 20, Reader())
    assert (result.streams, result.refused, result.complete) == (20, 0, 20)
    for o in result.outcomes:
        assert (o.results, o.batches, o.done_count) == (3, 2, 3)
        assert o.ttfe_s is not None
        assert 0.04 < o.ttfe_s < o.total_s
    assert result.max_open() == 20
    assert result.statuses == {200: 20}


async def test_a_hold_after_the_first_event_keeps_the_stream_open() -> None:
    start = time.perf_counter()
    result = await _run(_sse, 5, Reader(hold_s=0.3))
    assert result.complete == 5
    assert all(o.total_s >= 0.3 for o in result.outcomes)
    assert time.perf_counter() - start < 2.0  # held together, not one after another


async def test_a_503_is_refused_with_its_retry_after_and_body() -> None:
    result = await _run(_busy, 3, Reader())
    assert (result.refused, result.complete) == (3, 0)
    assert {o.retry_after for o in result.outcomes} == {"1"}
    assert {o.refusal for o in result.outcomes} == {
        b'{"error":{"message":"overloaded: more than 1 open streams"}}'
    }
    assert all(o.ttfe_s is None for o in result.outcomes)


async def test_no_server_is_a_transport_error_not_an_exception() -> None:
    result = await burst("http://127.0.0.1:9", ["/s"], Reader(timeout_s=5))
    (outcome,) = result.outcomes
    assert outcome.status == 0
    assert outcome.refused
    assert "Error" in outcome.error


def test_parse_events_counts_results_done_and_errors() -> None:
    body = (
        _event("results", {"results": [1, 2]})
        + b": a comment\n\n"
        + _event("error", {"message": "x"})
        + _event("done", {"count": 2})
    )
    assert parse_events(body) == (2, 1, 2, 1)


def test_incomplete_when_done_disagrees_with_what_arrived() -> None:
    bad = StreamOutcome(200, 0.1, 0.2, results=3, done_count=4)
    assert not bad.complete
    assert StreamOutcome(200, 0.1, 0.2, results=4, done_count=4).complete


def test_max_open_counts_overlapping_streams() -> None:
    outcomes = tuple(
        StreamOutcome(200, 0.1, total, started_at=start)
        for start, total in ((0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (3.0, 0.5))
    )
    assert BurstResult(outcomes, 4.0).max_open() == 2  # [0,1) [0.5,1.5) [1,2): two at once


def test_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 0.95) == 95.0
    assert nearest_rank(values, 1.0) == 100.0
    assert nearest_rank([], 0.5) is None
