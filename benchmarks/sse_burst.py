"""Many SSE streams from one process: open N at once, hold each after its first event.

Raw asyncio sockets, no HTTP library: thousands of concurrent streams then cost the client
little CPU, so that it takes as little as possible from a server on the same cores. One
stream, as a reader does it:

1. connect, send ``GET path`` with ``Connection: close``;
2. read the response head; anything but 200 is *refused* (its status, Retry-After and
   body kept);
3. read until the first complete event (``\\n\\n``): its arrival, counted from the start
   of the connect, is the time to first event (TTFE);
4. hold: sleep ``hold_s`` without reading (the server's writes pile up in the socket
   buffers, or it blocks on them), then read the rest slowly or at once;
5. parse the events: a stream is *complete* when it ended with ``done`` announcing the
   number of results it delivered.

A slow reader (``read_delay_s``, ``rcvbuf``) reads a few bytes at a time through a small
socket receive buffer, so that the server's sends block. Used by the tests of
``tests/service/http`` and by ``benchmarks/sse_scale.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

STATUS_NO_RESPONSE = 0
REFUSAL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Reader:
    """How one stream is read after its first event."""

    hold_s: float = 0.0  # sleep this long after the first event, reading nothing
    read_delay_s: float = 0.0  # then sleep this long before each read of read_size bytes
    read_size: int = 65536
    rcvbuf: int | None = None  # SO_RCVBUF of the client socket (a small one: a slow reader)
    timeout_s: float = 120.0  # the whole stream, connect to end

    def __post_init__(self) -> None:
        assert self.hold_s >= 0, f"hold_s must be >= 0, got {self.hold_s}"
        assert self.read_delay_s >= 0, f"read_delay_s must be >= 0, got {self.read_delay_s}"
        assert self.read_size >= 1, f"read_size must be >= 1, got {self.read_size}"
        assert self.timeout_s > 0, f"timeout_s must be > 0, got {self.timeout_s}"


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    """What one stream got."""

    status: int  # HTTP status; 0: no response (refused connection, reset, timeout)
    ttfe_s: float | None  # connect start -> first complete event; None: no event
    total_s: float
    started_at: float = 0.0  # time.perf_counter() at the connect
    results: int = 0  # result rows received in `results` events
    batches: int = 0
    done_count: int | None = None  # what `done` announced; None: no `done`
    errors: int = 0  # `error` events
    retry_after: str | None = None
    error: str = ""  # transport or protocol error, if any
    body_bytes: int = 0
    refusal: bytes = b""  # the body of a response other than 200 (its first 4 KiB)

    @property
    def refused(self) -> bool:
        return self.status != 200

    @property
    def complete(self) -> bool:
        return (
            self.status == 200
            and self.errors == 0
            and self.done_count is not None
            and self.done_count == self.results
        )


@dataclass(frozen=True, slots=True)
class BurstResult:
    """Every stream of one burst, in the order they were started."""

    outcomes: tuple[StreamOutcome, ...]
    wall_s: float
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def streams(self) -> int:
        return len(self.outcomes)

    @property
    def refused(self) -> int:
        return sum(1 for o in self.outcomes if o.refused)

    @property
    def complete(self) -> int:
        return sum(1 for o in self.outcomes if o.complete)

    def max_open(self) -> int:
        """The most streams this client held open at one moment."""
        edges = [(o.started_at, 1) for o in self.outcomes]
        edges += [(o.started_at + o.total_s, -1) for o in self.outcomes]
        open_now = peak = 0
        for _, step in sorted(edges):  # at a tie an end (-1) sorts before a start
            open_now += step
            peak = max(peak, open_now)
        return peak

    def ttfe_quantile(self, q: float) -> float | None:
        """Exact ``q`` quantile (nearest rank) of the TTFE of the streams that got an event."""
        return nearest_rank([o.ttfe_s for o in self.outcomes if o.ttfe_s is not None], q)

    def summary(self) -> dict[str, object]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 1)

        return {
            "streams": self.streams,
            "refused": self.refused,
            "complete": self.complete,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "ttfe_p50_ms": ms(self.ttfe_quantile(0.50)),
            "ttfe_p95_ms": ms(self.ttfe_quantile(0.95)),
            "ttfe_p99_ms": ms(self.ttfe_quantile(0.99)),
            "ttfe_max_ms": ms(self.ttfe_quantile(1.0)),
            "max_open": self.max_open(),
            "wall_s": round(self.wall_s, 2),
        }


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    assert 0 < q <= 1, f"q must be in (0, 1], got {q}"
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least 1
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------------------- one stream


class _Protocol(Exception):
    pass


def _request(host: str, port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def _head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise _Protocol(f"not an HTTP status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class _Body:
    """The response body as it arrives (chunked or not), decoded."""

    def __init__(self, reader: asyncio.StreamReader, headers: dict[str, str], size: int) -> None:
        self.reader = reader
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self.remaining = int(length) if length is not None and not self.chunked else None
        self.size = size
        self.data = bytearray()
        self.ended = False
        self._chunk_left = 0

    async def more(self) -> None:
        """Read at most ``size`` more bytes of the body; sets ``ended`` at its end."""
        if self.ended:
            return
        if not self.chunked:
            want = self.size if self.remaining is None else min(self.size, self.remaining)
            got = await self.reader.read(want) if want > 0 else b""
            self.data += got
            if self.remaining is not None:
                self.remaining -= len(got)
            if not got or self.remaining == 0:
                self.ended = True
            return
        if self._chunk_left == 0:
            line = await self.reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # the empty trailer
                self.ended = True
                return
            self._chunk_left = size
        got = await self.reader.read(min(self.size, self._chunk_left))
        if not got:
            raise _Protocol("connection closed inside a chunk")
        self.data += got
        self._chunk_left -= len(got)
        if self._chunk_left == 0:
            await self.reader.readexactly(2)  # the chunk's CRLF


def parse_events(body: bytes) -> tuple[int, int, int | None, int]:
    """(results, batches, done count or None, error events) of an SSE body."""
    results = batches = errors = 0
    done: int | None = None
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = b"message", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if not data:
            continue
        if name == b"results":
            batches += 1
            results += len(orjson.loads(data)["results"])
        elif name == b"done":
            done = int(orjson.loads(data)["count"])
        elif name == b"error":
            errors += 1
    return results, batches, done, errors


async def _connect(
    host: str, port: int, reader: Reader
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if reader.rcvbuf is None:
        return await asyncio.open_connection(host, port, limit=max(reader.read_size, 65536))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, reader.rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    # a small StreamReader limit too: it stops reading the socket beyond twice this
    return await asyncio.open_connection(sock=sock, limit=max(reader.read_size, 1024))


async def open_stream(host: str, port: int, path: str, reader: Reader) -> StreamOutcome:
    """One stream, read as ``reader`` says; never raises for what the server does."""
    start = time.perf_counter()
    status, retry_after, ttfe = STATUS_NO_RESPONSE, None, None
    body: _Body | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(reader.timeout_s):
            stream, writer = await _connect(host, port, reader)
            writer.write(_request(host, port, path))
            await writer.drain()
            status, headers = _head(await stream.readuntil(b"\r\n\r\n"))
            retry_after = headers.get("retry-after")
            body = _Body(stream, headers, 65536)
            while not body.ended and b"\n\n" not in body.data:
                await body.more()
            if b"\n\n" in body.data and status == 200:
                ttfe = time.perf_counter() - start
            if reader.hold_s:
                await asyncio.sleep(reader.hold_s)
            body.size = reader.read_size
            while not body.ended:
                if reader.read_delay_s:
                    await asyncio.sleep(reader.read_delay_s)
                await body.more()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, _Protocol, ValueError) as exc:
        return StreamOutcome(
            status=status,
            ttfe_s=ttfe,
            total_s=time.perf_counter() - start,
            started_at=start,
            retry_after=retry_after,
            error=f"{type(exc).__name__}: {exc}",
            body_bytes=len(body.data) if body is not None else 0,
        )
    finally:
        if writer is not None:
            writer.close()
    assert body is not None, "a finished read has a body"
    raw = bytes(body.data)
    results, batches, done, errors = parse_events(raw) if status == 200 else (0, 0, None, 0)
    refusal = raw[:REFUSAL_BYTES] if status != 200 else b""
    return StreamOutcome(
        status=status,
        ttfe_s=ttfe,
        total_s=time.perf_counter() - start,
        started_at=start,
        results=results,
        batches=batches,
        done_count=done,
        errors=errors,
        retry_after=retry_after,
        body_bytes=len(raw),
        refusal=refusal,
    )


async def burst(
    base_url: str, paths: Sequence[str], reader: Reader, *, ramp_s: float = 0.0
) -> BurstResult:
    """Open one stream per path, all at once (or spread evenly over ``ramp_s``)."""
    url = urlsplit(base_url)
    host, port = url.hostname, url.port
    assert host is not None, f"no host in the base URL {base_url!r}"
    assert port is not None, f"no port in the base URL {base_url!r}"
    n = len(paths)

    async def one(i: int, path: str) -> StreamOutcome:
        if ramp_s > 0 and n > 1:
            await asyncio.sleep(ramp_s * i / (n - 1))
        return await open_stream(host, port, path, reader)

    start = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))
    statuses: dict[int, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    return BurstResult(tuple(outcomes), time.perf_counter() - start, statuses)
