"""The delaying relay, over real sockets: a round trip to PostgreSQL through it costs twice
its delay, nothing is lost or reordered, EOF and SIGTERM close what they should."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import pytest

from ci.errors import StackError
from ci.stack.process import free_port, stop_pid
from ci.stack.relay import READY, RelayConfig, relay_command, start_relay
from ci.stack.state import Component
from tests.harness import Servers

pytestmark = pytest.mark.timeout(120)

StartRelay = Callable[[int, float], Component]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[StartRelay]:
    """``relay(target_port, delay_ms)``: a relay process to 127.0.0.1:target_port; every
    one started is stopped by PID after the test."""
    started: list[Component] = []

    def start(target_port: int, delay_ms: float) -> Component:
        config = RelayConfig(free_port(), "127.0.0.1", target_port, delay_ms)
        comp = start_relay(config, tmp_path / f"relay-{len(started)}.log")
        started.append(comp)
        return comp

    yield start
    for comp in started:
        stop_pid(comp.pid, "relay")


def _port(comp: Component) -> int:
    port = urlsplit(comp.url).port
    assert port is not None, comp.url
    return port


def _via(database_url: str, port: int) -> str:
    """``database_url`` through a relay listening on ``port``."""
    parts = urlsplit(database_url)
    netloc = f"{parts.username}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.contextmanager
def tcp_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server on a free port that runs ``handle`` on a thread per connection."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _addr = srv.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        srv.close()


def echo(conn: socket.socket) -> None:
    """Send back everything until EOF, then close."""
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


# --- against PostgreSQL --------------------------------------------------------------


async def _pg(url: str, application: str = "relay-test") -> asyncpg.Connection:
    """A connection whose every wait is bounded: a relay that garbles a stream fails a
    test instead of hanging it."""
    conn: asyncpg.Connection = await asyncpg.connect(
        url, timeout=10, command_timeout=20, server_settings={"application_name": application}
    )
    return conn


async def _timed_select(url: str, n: int) -> tuple[list[float], list[int]]:
    conn = await _pg(url)
    try:
        await conn.fetchval("SELECT 1")  # the statement prepared: one round trip from now on
        times, answers = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            answers.append(await conn.fetchval("SELECT 1"))
            times.append((time.perf_counter() - t0) * 1000)
        return times, answers
    finally:
        await conn.close()


@pytest.mark.stack
def test_a_round_trip_to_postgres_through_the_relay_costs_twice_its_delay(
    servers: Servers, relay: StartRelay
) -> None:
    pg_port = urlsplit(servers.database_url).port
    assert pg_port is not None
    comp = relay(pg_port, 10.0)
    times, answers = asyncio.run(_timed_select(_via(servers.database_url, _port(comp)), 20))
    assert answers == [1] * 20
    assert min(times) >= 20.0, times
    # loopback itself adds well under a ms; the margin is for a busy 2-CPU machine
    assert sorted(times)[len(times) // 2] < 20.0 + 10.0, times


async def _large_result(url: str) -> str:
    conn = await _pg(url)
    try:
        value = await conn.fetchval(
            "SELECT string_agg(lpad(i::text, 7, '0'), '' ORDER BY i) "
            "FROM generate_series(1, 200000) AS i"
        )
        return str(value)
    finally:
        await conn.close()


@pytest.mark.stack
def test_a_large_result_arrives_whole_and_in_order(servers: Servers, relay: StartRelay) -> None:
    pg_port = urlsplit(servers.database_url).port
    assert pg_port is not None
    comp = relay(pg_port, 2.0)
    got = asyncio.run(_large_result(_via(servers.database_url, _port(comp))))
    expected = "".join(f"{i:07d}" for i in range(1, 200001))  # 1.4 MB in ~22 chunks or more
    assert len(got) == len(expected)
    assert got == expected


async def _backends(admin_url: str, application: str) -> list[int]:
    conn = await _pg(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application
        )
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


async def _closes(conn: asyncpg.Connection, timeout_s: float) -> bool:
    """Whether ``conn`` sees its connection closed within ``timeout_s``."""
    for _ in range(int(timeout_s / 0.05)):
        if conn.is_closed():
            return True
        await asyncio.sleep(0.05)
    return bool(conn.is_closed())


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.stack
def test_eof_from_either_end_closes_the_other(servers: Servers, relay: StartRelay) -> None:
    pg_port = urlsplit(servers.database_url).port
    assert pg_port is not None
    url = _via(servers.database_url, _port(relay(pg_port, 5.0)))

    async def client_leaves() -> None:  # the client closes: its backend ends
        conn = await _pg(url, "relay-a")
        assert await _backends(servers.database_url, "relay-a")
        await conn.close()

    asyncio.run(client_leaves())
    assert _until(lambda: not asyncio.run(_backends(servers.database_url, "relay-a")))

    async def server_leaves() -> None:  # the backend ends: the client's connection closes
        conn = await _pg(url, "relay-b")
        try:
            (pid,) = await _backends(servers.database_url, "relay-b")
            admin = await _pg(servers.database_url)
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
            assert await _closes(conn, 10.0)
        finally:
            conn.terminate()

    asyncio.run(server_leaves())


@pytest.mark.stack
def test_sigterm_closes_every_connection_and_exits_0(servers: Servers, tmp_path: Path) -> None:
    pg_port = urlsplit(servers.database_url).port
    assert pg_port is not None
    config = RelayConfig(free_port(), "127.0.0.1", pg_port, 1.0)
    with subprocess.Popen(
        relay_command(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[3],  # ci of this checkout
    ) as proc:
        try:
            assert proc.stdout is not None
            assert READY in proc.stdout.readline()
            url = _via(servers.database_url, config.listen_port)

            async def held_then_dropped() -> None:
                conn = await _pg(url, "relay-c")
                try:
                    assert await conn.fetchval("SELECT 2") == 2
                    os.kill(proc.pid, signal.SIGTERM)
                    assert await asyncio.to_thread(proc.wait, 10) == 0
                    assert await _closes(conn, 5.0)
                finally:
                    conn.terminate()

            asyncio.run(held_then_dropped())
            assert _until(lambda: not asyncio.run(_backends(servers.database_url, "relay-c")))
            assert proc.stdout.read() == ""  # nothing logged: no traceback on the way out
        finally:
            if proc.poll() is None:
                proc.kill()


# --- against an echo server ----------------------------------------------------------


def test_many_small_writes_arrive_in_order(relay: StartRelay) -> None:
    with tcp_server(echo) as port:
        comp = relay(port, 2.0)
        sent = [f"{i:06d};".encode() for i in range(5000)]
        got: list[bytes] = []
        with connect(_port(comp)) as sock:
            reader = threading.Thread(target=lambda: got.append(recv_all(sock)))
            reader.start()
            for i, chunk in enumerate(sent):
                sock.sendall(chunk)
                if i % 50 == 0:
                    time.sleep(0.001)  # chunks due at many different times
            sock.shutdown(socket.SHUT_WR)
            reader.join(30)
    assert got == [b"".join(sent)]


def test_megabytes_in_both_directions_pass_whole(relay: StartRelay) -> None:
    payload = os.urandom(2**20) * 24  # 24 MiB
    with tcp_server(echo) as port:
        comp = relay(port, 5.0)
        got: list[bytes] = []
        with connect(_port(comp)) as sock:
            reader = threading.Thread(target=lambda: got.append(recv_all(sock)))
            reader.start()
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reader.join(60)
    assert len(got) == 1
    assert hashlib.sha256(got[0]).digest() == hashlib.sha256(payload).digest()


def test_a_slow_reader_holds_the_sender_back_instead_of_filling_the_relay(
    relay: StartRelay,
) -> None:
    """A sink that reads ~6 MB/s and a sender of 64 MiB: the relay holds a few MiB (its
    queue limit and the socket buffers), and the sender waits."""
    received = [0]

    def slow_sink(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(32768):
                received[0] += len(data)
                time.sleep(0.005)

    payload = bytes(64 * 2**20)
    with tcp_server(slow_sink) as port:
        comp = relay(port, 2.0)
        proc = psutil.Process(comp.pid)
        rss_before = proc.memory_info().rss
        with connect(_port(comp)) as sock:

            def send() -> None:
                with contextlib.suppress(OSError):  # ended by the shutdown below
                    sock.sendall(payload)

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(1.5)
            grown_mb = (proc.memory_info().rss - rss_before) / 2**20
            still_sending = sender.is_alive()
            sock.shutdown(socket.SHUT_RDWR)
            sender.join(10)
    assert received[0] > 0
    assert still_sending, "64 MiB left the sender at once: nothing held it back"
    assert grown_mb < 24, f"the relay grew {grown_mb:.0f} MB: its queues are not bounded"


def test_a_half_close_passes_through_and_the_answer_still_comes(relay: StartRelay) -> None:
    def answer_after_eof(conn: socket.socket) -> None:  # reads to EOF, then answers
        with conn:
            request = recv_all(conn)
            conn.sendall(b"got " + request)

    with tcp_server(answer_after_eof) as port, connect(_port(relay(port, 3.0))) as sock:
        sock.sendall(b"ping")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"got ping"  # and then EOF: the server closed


def test_a_target_that_is_down_closes_the_client_and_the_relay_goes_on(
    relay: StartRelay, tmp_path: Path
) -> None:
    comp = relay(free_port(), 1.0)  # nothing listens there
    for _ in range(2):
        with connect(_port(comp)) as sock:
            assert recv_all(sock) == b""
    assert psutil.Process(comp.pid).is_running()
    assert comp.log is not None
    assert "cannot reach 127.0.0.1:" in Path(comp.log).read_text()


def test_the_relays_cpu_for_many_small_round_trips_stays_small(relay: StartRelay) -> None:
    """20 connections, like a pool, each making 500 round trips of 100 bytes at 1 ms each
    way: the relay's CPU is a fraction of the wall time (a relay that spun on its timers
    would burn a whole CPU)."""
    with tcp_server(echo) as port:
        comp = relay(port, 1.0)
        proc = psutil.Process(comp.pid)

        def client(n: int) -> None:
            with connect(_port(comp)) as sock:
                for _ in range(n):
                    sock.sendall(b"q" * 100)
                    got = 0
                    while got < 100:
                        got += len(sock.recv(65536))

        threads = [threading.Thread(target=client, args=(500,)) for _ in range(20)]
        before = proc.cpu_times()
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        wall = time.monotonic() - t0
        after = proc.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    per_10k = cpu / (20 * 500) * 10_000
    assert wall >= 500 * 2 * 1.0 / 1000  # each round trip held 2 ms
    assert cpu < 0.5 * wall, f"{cpu:.2f} s CPU in {wall:.2f} s ({per_10k:.2f} s per 10k)"


def test_a_relay_config_names_a_bad_value() -> None:
    with pytest.raises(StackError, match=r"relay delay_ms = -1\.0: must lie in \[0, 1000\]"):
        RelayConfig(free_port(), "127.0.0.1", 5432, -1.0)
    with pytest.raises(StackError, match=r"relay target_port = 0: not a TCP port"):
        RelayConfig(free_port(), "127.0.0.1", 0, 1.0)


def test_a_relay_that_cannot_listen_is_a_clear_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=r"relay on port \d+ exited during start-up"):
            start_relay(RelayConfig(port, "127.0.0.1", 5432, 1.0), tmp_path / "relay.log")
