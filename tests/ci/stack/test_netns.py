"""A database host of the run's own: a namespace over a veth pair, gone after, however it ends."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from ci.errors import StackError
from ci.experiments.gate.sampling import backend_cpu
from ci.settings import StackSettings
from ci.settings.env import DB_HOST_NETWORK
from ci.stack import netns, pg_home, run_sql, start_postgres, stop_postgres
from ci.stack.lifecycle import loopback_settings
from ci.stack.netns import check_support, db_link, free_subnet, open_link

pytestmark = pytest.mark.timeout(120)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None,
    reason="needs root and iproute2 (ip, tc)",
)


def _netem_missing() -> str | None:
    """Why this host cannot delay a link (None: it can)."""
    try:
        check_support(1.0)
    except StackError as exc:
        return str(exc)
    return None


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _devices() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}


def _ours() -> tuple[set[str], set[str]]:
    """The namespaces and veth ends of this module's kind that exist now."""
    return (
        {n for n in _namespaces() if n.startswith("perfci-")},
        {d for d in _devices() if d.startswith("pci")},
    )


@pytest.fixture
def clean() -> Iterator[None]:
    """Asserts that the test leaves no namespace or veth end of its own behind."""
    before = _ours()
    yield
    assert _ours() == before


def test_a_subnet_is_drawn_clear_of_this_hosts_addresses() -> None:
    used = [ipaddress.ip_network("10.231.0.0/17"), ipaddress.ip_network("fd00::/64")]
    rng = random.Random(3)
    for _ in range(200):
        subnet = free_subnet(used, rng)
        assert subnet.prefixlen == 30
        assert subnet.subnet_of(DB_HOST_NETWORK)
        assert not subnet.overlaps(used[0])
    with pytest.raises(StackError, match=r"no free /30 in 10\.231\.0\.0/16"):
        free_subnet([ipaddress.ip_network("10.0.0.0/8")], rng)


def test_without_root_the_error_says_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "is_root", lambda: False)
    message = (
        r"db_rtt_ms = 4\.0 needs root and iproute2 with netem \(this process is not root\): "
        r"set db_rtt_ms = 0"
    )
    with pytest.raises(StackError, match=message):
        check_support(4.0)
    with pytest.raises(StackError, match=message), db_link(4.0):
        pass


def test_without_tc_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "is_root", lambda: True)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "tc" else real(name))
    with pytest.raises(StackError, match=r"db_rtt_ms = 2\.5 needs .* \(no tc on PATH"):
        open_link(2.5)


def test_no_round_trip_is_no_namespace_and_postgres_on_loopback(tmp_path: Path) -> None:
    with db_link(0.0) as link:
        assert link is None
    assert loopback_settings(tmp_path).pg_host == "127.0.0.1"
    assert StackSettings().pg_host == "127.0.0.1"


@needs_root
def test_a_link_is_there_while_open_and_gone_after(clean: None) -> None:
    link = open_link(0.0)
    try:
        assert len(link.host_end) <= 15
        assert len(link.peer_end) <= 15
        assert link.namespace in _namespaces()
        assert link.host_end in _devices()
        addresses = subprocess.run(
            ["ip", "-o", "addr", "show", "dev", link.host_end],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{link.db_host.peer}/30" in addresses
    finally:
        netns.close_link(link)
    assert link.namespace not in _namespaces()
    assert link.host_end not in _devices()


@needs_root
def test_a_step_that_fails_removes_what_was_made(
    monkeypatch: pytest.MonkeyPatch, clean: None
) -> None:
    def refuse(tc: list[str], dev: str, rtt_ms: float) -> None:
        raise StackError("no netem here")

    monkeypatch.setattr(netns, "_netem", refuse)
    with pytest.raises(StackError, match="no netem here"):
        open_link(6.0)


@needs_root
def test_the_link_goes_when_the_block_fails(monkeypatch: pytest.MonkeyPatch, clean: None) -> None:
    monkeypatch.setattr(netns, "_netem", lambda tc, dev, rtt_ms: None)  # no delay needed here
    seen: list[str] = []

    def start_fails() -> None:
        with db_link(6.0) as link:
            assert link is not None
            seen.append(link.namespace)
            assert link.namespace in _namespaces()
            raise RuntimeError("start failed")

    with pytest.raises(RuntimeError, match="start failed"):
        start_fails()
    assert seen


@needs_root
def test_a_kernel_without_netem_is_a_clear_error(clean: None) -> None:
    why = _netem_missing()
    if why is None:
        pytest.skip("this kernel has netem")
    assert why.startswith("db_rtt_ms = 1.0 needs root and iproute2 with netem (")
    assert "netem" in why.split("(", 1)[1]
    assert why.endswith(": set db_rtt_ms = 0")


# -- PostgreSQL in the namespace -------------------------------------------------------------


@pytest.mark.stack
@needs_root
def test_postgres_in_a_namespace_serves_the_host_end_and_its_backends_are_found(
    tmp_path: Path, clean: None
) -> None:
    link = open_link(0.0)  # the namespace without a delay: every kernel has that
    settings = loopback_settings(tmp_path / "run", db_host=link.db_host)
    try:
        pg, data = start_postgres(settings)
        try:
            assert urlsplit(pg.url).hostname == link.db_host.address
            assert pg.pid is not None
            own = os.readlink("/proc/self/ns/net")
            assert os.readlink(f"/proc/{pg.pid}/ns/net") != own  # it runs in the namespace
            run_sql(pg.url, "CREATE DATABASE gate_x")
            db_url = pg.url.rsplit("/", 1)[0] + "/gate_x"
            loop = asyncio.new_event_loop()
            try:
                conn = loop.run_until_complete(asyncpg.connect(db_url, timeout=10))
                try:
                    client, pid = loop.run_until_complete(
                        conn.fetchrow("SELECT inet_client_addr()::text, pg_backend_pid()")
                    )
                    # the windows' CPU attribution: backends listed by database, read by PID
                    found = backend_cpu(pg.url, ["gate_x"])
                finally:
                    loop.run_until_complete(conn.close())
            finally:
                loop.close()
            assert client.split("/")[0] == link.db_host.peer  # in from the host end of the link
            assert list(found["gate_x"]) == [pid]
        finally:
            stop_postgres(pg, data)
            shutil.rmtree(pg_home(settings.run_dir), ignore_errors=True)
    finally:
        netns.close_link(link)


@pytest.mark.stack
@needs_root
def test_a_round_trip_of_20_ms_is_paid_by_every_connect_and_query(
    tmp_path: Path, clean: None
) -> None:
    why = _netem_missing()
    if why is not None:
        pytest.skip(f"this host cannot delay a link: {why}")
    with db_link(20.0) as link:
        assert link is not None
        settings = loopback_settings(tmp_path / "run", db_host=link.db_host)
        pg, data = start_postgres(settings)
        try:
            t0 = time.perf_counter()
            with socket.create_connection((link.db_host.address, settings.pg_port), timeout=5):
                connect_ms = (time.perf_counter() - t0) * 1000

            async def select_1() -> float:
                conn = await asyncpg.connect(pg.url, timeout=10)
                try:
                    t = time.perf_counter()
                    await conn.fetchval("SELECT 1")
                    return (time.perf_counter() - t) * 1000
                finally:
                    await conn.close()

            query_ms = asyncio.run(select_1())
        finally:
            stop_postgres(pg, data)
            shutil.rmtree(pg_home(settings.run_dir), ignore_errors=True)
    assert connect_ms >= 20.0
    assert 20.0 <= query_ms < 200.0
