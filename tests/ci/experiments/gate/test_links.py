"""A side's link to PostgreSQL: the server itself, or a relay of its own that a restart
replaces on the same port (real relay processes, a real TCP server behind them)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from ci.experiments.gate.links import open_link, restart_link, with_database, with_port
from ci.settings import StackSettings
from ci.stack import ServerSet
from ci.stack.process import stop_pid
from ci.stack.state import Component
from tests.ci.stack.test_relay import connect, echo, recv_all, tcp_server


def _servers(tmp_path: Path) -> ServerSet:
    """A server set whose only live members are the relays a test starts."""
    pg = Component("postgres", None, "postgresql://postgres@127.0.0.1:1/postgres", None)
    valkey = Component("valkey", None, "redis://127.0.0.1:1/0", None)
    return ServerSet(StackSettings(run_dir=tmp_path), pg, tmp_path / "pg", valkey)


def _round_trip_s(port: int) -> float:
    with connect(port) as sock:
        t0 = time.monotonic()
        sock.sendall(b"ping")
        sock.shutdown(socket.SHUT_WR)  # the echo server then closes
        assert recv_all(sock) == b"ping"
        return time.monotonic() - t0


def test_without_a_round_trip_a_side_reaches_the_server_itself(tmp_path: Path) -> None:
    servers = _servers(tmp_path)
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    link = open_link(servers, admin, 0.0, tmp_path / "a")
    assert (link.url, link.relay_pid) == (admin, None)
    assert restart_link(servers, link) is link
    assert servers.relays == []


def test_a_restarted_link_is_a_new_relay_on_the_same_port(tmp_path: Path) -> None:
    servers = _servers(tmp_path)
    with tcp_server(echo) as upstream:
        admin = f"postgresql://postgres@127.0.0.1:{upstream}/postgres"
        link = open_link(servers, admin, 20.0, tmp_path / "a")
        try:
            port = urlsplit(link.url).port
            assert port not in (None, upstream)
            assert port is not None
            assert servers.relays == [link.relay_pid]
            assert _round_trip_s(port) >= 0.020  # 10 ms each way
            again = restart_link(servers, link)
            assert again.url == link.url
            assert servers.relays == [again.relay_pid]
            assert again.relay_pid not in (None, link.relay_pid)
            assert _gone(link.relay_pid)
            assert _round_trip_s(port) >= 0.020
        finally:
            for pid in servers.relays:
                stop_pid(pid, "relay")
    assert _gone(again.relay_pid)


def _gone(pid: int | None) -> bool:
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_url_at_another_port_keeps_its_user_and_database() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/gate_a?sslmode=disable"
    assert with_port(url, 6001) == "postgresql://postgres@127.0.0.1:6001/gate_a?sslmode=disable"
    assert with_port("redis://127.0.0.1:6379/0", 7) == "redis://127.0.0.1:7/0"
    assert with_port("postgresql://u:p@[::1]:5432/x", 9) == "postgresql://u:p@[::1]:9/x"
    assert with_database(url, "gate_b") == (
        "postgresql://postgres@127.0.0.1:5432/gate_b?sslmode=disable"
    )
