"""A delaying TCP relay: the round trip of a database on another host, on loopback.

``python -m ci.stack.relay --listen-port N --target-host H --target-port M --delay-ms D``
accepts connections on 127.0.0.1:N and opens one to H:M for each; every chunk read from
either end is written to the other end D ms later, so a request and its answer cost 2 D
more than on loopback (``[gate] db_rtt_ms`` = 2 D). It needs no root, no network namespace
and no kernel module (netem), so it runs in any container; being a process of its own, its
CPU can be read apart from the service's.

==============  ========================================================================
what            how
==============  ========================================================================
order           per direction one queue of (due time, chunk) and one timer, for the chunk
                at its head, which writes every chunk that is due: chunks leave in the
                order they came, and no chunk has a timer (or a task) of its own
delay           a chunk is written once ``time.monotonic()`` reaches its due time; a
                timer that fires early is set again, so no chunk is held less than D.
                The loop's timers tick in whole ms, so a chunk waits for the first tick
                after its due time: held D + 0.15 ms on average for one connection in
                lockstep, D + 0.7 ms for 20 connections at once (uvloop, 2 CPUs under
                load; the default loop: D + 0.3 to 0.5 ms at 1.8 times the CPU)
back-pressure   an end whose send buffer is full (``pause_writing``) stops the other end's
                reading until it drains; a direction holding more than ``QUEUE_LIMIT``
                bytes stops its source too (as a TCP window would: at most that per D)
close           an end's EOF reaches the other end after the delay as a half-close
                (``write_eof``); the connection is closed once both directions have
                ended, and at once when either end is lost (a reset)
SIGTERM         stop accepting, close every connection (``CLOSE_GRACE_S`` to flush what
                it buffered, then aborted), exit 0; SIGINT alike
CPU             asyncio protocols (the loop's own reads, no per-byte work, no task per
                chunk); uvloop when importable: 10,000 round trips of 100 bytes over 20
                connections cost 0.3-0.6 s of CPU here (the default loop ~1 s); over one
                connection in lockstep ~1.1 s (each chunk wakes the process twice)
==============  ========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ci.errors import StackError
from ci.stack.process import spawn, stop_pid, wait_until
from ci.stack.state import Component

QUEUE_LIMIT = 4 * 2**20  # bytes one direction holds before it stops reading
#: The line the relay prints once it listens (its readiness, read from its log).
READY = "relay listening on"
#: The longest delay a relay accepts (ms): beyond it, it would not emulate a network.
MAX_DELAY_MS = 1000.0
TIMER_TICK_S = 0.001  # the shortest sleep: libuv's timers count whole milliseconds
CLOSE_GRACE_S = 2.0  # on SIGTERM, connections have this long to flush before they are aborted
_EOF = b""  # in a queue: the end of that direction
DESCRIPTION = "A TCP relay that holds every chunk for --delay-ms before passing it on."


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Where a relay listens, where it forwards to, and how long it holds each chunk."""

    listen_port: int
    target_host: str
    target_port: int
    delay_ms: float
    listen_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        for name in ("listen_port", "target_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535 or (name == "target_port" and port == 0):
                raise StackError(f"relay {name} = {port}: not a TCP port")
        if not (math.isfinite(self.delay_ms) and 0 <= self.delay_ms <= MAX_DELAY_MS):
            raise StackError(
                f"relay delay_ms = {self.delay_ms!r}: must lie in [0, {MAX_DELAY_MS:g}]"
            )


class _End(asyncio.Protocol):
    """One socket of a relayed connection (the client's or the target's)."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.way_out: _Way  # what this end sends, on its way to the other end
        self.way_in: _Way  # what the other end sent, on its way to this one
        self._holds: set[str] = set()  # why its reading is paused ("queue", "drain")

    def hold(self, reason: str) -> None:
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._holds.add(reason)

    def release(self, reason: str) -> None:
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream's transport (uvloop's is not a subclass of asyncio's, hence no isinstance)
        self.transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._holds:
            transport.pause_reading()
        self.conn.made(self)

    def data_received(self, data: bytes) -> None:
        self.way_out.push(data)

    def eof_received(self) -> bool:
        self.way_out.push(_EOF)
        return True  # a half-close: the other direction goes on

    def pause_writing(self) -> None:  # this end's send buffer is full: the other end waits
        self.way_in.src.hold("drain")

    def resume_writing(self) -> None:
        self.way_in.src.release("drain")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.conn.lost(self)


class _Way:
    """One direction: what ``src`` sends is written to ``dst`` ``delay_s`` later, in order.

    One queue of (due time, chunk) and at most one timer, for the chunk at its head; the
    timer writes every chunk that is due, then is set for the next one."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay_s: float, src: _End, dst: _End
    ) -> None:
        self._loop = loop
        self._delay_s = delay_s
        self.src = src
        self.dst = dst
        self._queue: deque[tuple[float, bytes]] = deque()  # (due, chunk); _EOF: the end
        self._held = 0  # bytes in the queue
        self._timer: asyncio.TimerHandle | None = None
        self.ended = False  # its EOF was passed on
        src.way_out = self
        dst.way_in = self

    def push(self, data: bytes) -> None:
        self._queue.append((time.monotonic() + self._delay_s, data))
        self._held += len(data)
        if self._held > QUEUE_LIMIT:
            self.src.hold("queue")
        self.arm()

    def arm(self) -> None:
        """The timer for the chunk at the head (none before ``dst`` is connected)."""
        if self._timer is None and self._queue and self.dst.transport is not None:
            wait = self._queue[0][0] - time.monotonic()
            # a timer may fire up to its resolution early (uvloop counts whole ms): what is
            # left then is slept off by the next tick, never by spinning
            self._timer = self._loop.call_later(max(wait, TIMER_TICK_S), self._flush)

    def _flush(self) -> None:
        self._timer = None
        dst = self.dst.transport
        if dst is None:
            return
        now = time.monotonic()
        queue = self._queue
        due: list[bytes] = []
        while queue and queue[0][0] <= now:
            _due, data = queue.popleft()
            if not data:  # its end (a read never gives empty data)
                if due:
                    dst.writelines(due)
                self.ended = True
                self.dst.conn.ended(self)
                return
            due.append(data)
            self._held -= len(data)
        if due:
            dst.writelines(due)
        if self._held <= QUEUE_LIMIT:
            self.src.release("queue")
        self.arm()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Connection:
    """One accepted connection and the one it opened to the target."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        loop = relay.loop
        delay_s = relay.config.delay_ms / 1000.0
        self.client = _End(self)
        self.target = _End(self)
        self._ways = (
            _Way(loop, delay_s, self.client, self.target),
            _Way(loop, delay_s, self.target, self.client),
        )
        self._connecting: asyncio.Task[None] | None = None
        self.closed = False

    def made(self, end: _End) -> None:
        if self.closed:  # the client left while the target's connection was being made
            assert end.transport is not None, "made without a transport"
            end.transport.close()
        elif end is self.client:
            self._relay.connections.add(self)
            self._connecting = self._relay.loop.create_task(self._connect())
        else:
            end.way_in.arm()  # what the client sent meanwhile

    async def _connect(self) -> None:
        cfg = self._relay.config
        try:
            await self._relay.loop.create_connection(
                lambda: self.target, cfg.target_host, cfg.target_port
            )
        except OSError as exc:
            print(f"cannot reach {cfg.target_host}:{cfg.target_port}: {exc}", file=sys.stderr)
            self.close()

    def ended(self, way: _Way) -> None:
        """``way``'s EOF is due: half-close its end, or close both once both ways ended."""
        transport = way.dst.transport
        if all(w.ended for w in self._ways):
            self.close()
        elif transport is not None:
            if transport.can_write_eof():
                transport.write_eof()  # after what is buffered
            else:
                self.close()

    def lost(self, end: _End) -> None:
        """An end is gone (reset, or closed by :meth:`close`): the other goes too."""
        self.close()
        if self.client.transport is None and self.target.transport is None:
            self._relay.connections.discard(self)
            if not self._relay.connections:
                self._relay.idle.set()

    def close(self, *, now: bool = False) -> None:
        """Both ends closed (``now``: aborted, their buffers dropped)."""
        self.closed = True
        for way in self._ways:
            way.cancel()
        if self._connecting is not None and self.target.transport is None:
            self._connecting.cancel()
        for end in (self.client, self.target):
            if end.transport is not None:
                if now:
                    end.transport.abort()
                else:
                    end.transport.close()


class Relay:
    """The connections of one relay."""

    def __init__(self, config: RelayConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.connections: set[_Connection] = set()
        self.idle = asyncio.Event()  # no connection is open
        self.idle.set()

    def accept(self) -> _End:
        self.idle.clear()
        return _Connection(self).client

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Close every connection (both ends), flushing what they buffered; those that
        cannot flush within ``grace_s`` are aborted."""
        for conn in list(self.connections):
            conn.close()
        try:
            await asyncio.wait_for(self.idle.wait(), grace_s)
        except TimeoutError:
            for conn in list(self.connections):
                conn.close(now=True)


async def serve(config: RelayConfig) -> None:
    """Relay until SIGTERM or SIGINT, then close every connection and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay = Relay(config, loop)
    server = await loop.create_server(
        relay.accept, config.listen_host, config.listen_port, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    print(
        f"{READY} {config.listen_host}:{port} -> {config.target_host}:{config.target_port}, "
        f"{config.delay_ms:g} ms each way",
        flush=True,
    )
    await stop.wait()
    server.close()
    await relay.close()
    await server.wait_closed()


def run(config: RelayConfig) -> None:
    try:
        import uvloop  # cheaper per chunk than the default loop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


def parse_args(argv: Sequence[str] | None = None) -> RelayConfig:
    p = argparse.ArgumentParser(prog="python -m ci.stack.relay", description=DESCRIPTION)
    p.add_argument("--listen-port", type=int, required=True, help="on 127.0.0.1 (0: any)")
    p.add_argument("--target-host", default="127.0.0.1")
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True, help="each way (half a round trip)")
    args = p.parse_args(argv)
    try:
        return RelayConfig(args.listen_port, args.target_host, args.target_port, args.delay_ms)
    except StackError as exc:
        p.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except OSError as exc:  # its port is taken, say
        print(
            f"relay cannot listen on {config.listen_host}:{config.listen_port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


def relay_command(config: RelayConfig, python: str = sys.executable) -> list[str]:
    return [
        python,
        "-m",
        "ci.stack.relay",
        *("--listen-port", str(config.listen_port)),
        *("--target-host", config.target_host),
        *("--target-port", str(config.target_port)),
        *("--delay-ms", repr(config.delay_ms)),
    ]


def start_relay(config: RelayConfig, log: Path, timeout_s: float = 10.0) -> Component:
    """A relay process of its own (this checkout's code); returns once it listens. Its
    component's URL is ``tcp://host:port``; stop it by PID (``stop_pid``)."""
    assert config.listen_port, "start_relay needs a port (free_port())"
    root = str(Path(__file__).resolve().parents[2])  # the checkout whose ci package this is
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    seen = log.stat().st_size if log.exists() else 0  # a log of an earlier relay says nothing
    proc = spawn(relay_command(config), log, env=env)
    component = Component(
        "relay", proc.pid, f"tcp://{config.listen_host}:{config.listen_port}", str(log)
    )
    try:
        wait_until(
            lambda: READY in _log_since(log, seen),
            timeout_s,
            f"relay on port {config.listen_port}",
            alive=lambda: proc.poll() is None,
            log=log,
        )
    except BaseException:
        stop_pid(proc.pid, "relay")
        raise
    return component


def _log_since(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
