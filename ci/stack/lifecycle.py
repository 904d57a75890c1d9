"""The whole stack's lifecycle: ``up``/``down``/``status`` and the context managers.

A failure or Ctrl-C during ``up`` stops what was already started. ``ServerSet`` is the one
"PostgreSQL + Valkey of our own, services started on demand" helper: the test harness and
``perfci chaos`` both use it.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci.errors import StackError
from ci.settings import StackSettings
from ci.stack.postgres import start_postgres, stop_postgres
from ci.stack.process import free_port, pid_alive, stop_pid
from ci.stack.service import service_readiness, start_service
from ci.stack.state import Component, StackState, load_state, state_path, write_state
from ci.stack.tools import check_tools
from ci.stack.valkey import start_valkey


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
    check_tools(postgres=not settings.database_url, valkey=not settings.redis_url)
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
        write_state(state)
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
    """Stack settings on free loopback ports (tests, runs on fresh stacks, chaos experiments)."""
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
    servers = start_server_set(settings)
    try:
        yield servers.pg, servers.valkey
    finally:
        servers.close()


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


@dataclass
class ServerSet:
    """PostgreSQL + Valkey started by this process; services and more PostgreSQL servers on
    demand; ``close()`` stops all.

    ``pg``/``valkey`` are reassigned when an experiment restarts a server on its port.
    ``pg_bin``: the bin folder of the install ``pg`` runs from (None: this project's wheel).
    ``relays``: relays in front of PostgreSQL (:mod:`ci.stack.relay`) that the caller
    started; ``close()`` stops them after the services and before PostgreSQL.
    """

    settings: StackSettings
    pg: Component
    pg_data: Path
    valkey: Component
    services: list[int] = field(default_factory=list)
    pg_bin: Path | None = None
    more_pg: list[tuple[Component, Path, Path | None]] = field(default_factory=list)
    relays: list[int] = field(default_factory=list)

    def start_service(
        self,
        run_dir: Path,
        *,
        workers: int = 1,
        service_env: Mapping[str, str] | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        code_root: Path | None = None,
        python: Path | None = None,
        app: str | None = None,
    ) -> Component:
        """A service on a free port with its own run folder (default embedder: hash);
        ``code_root``: the checkout whose service runs (default: this one); ``python``: the
        interpreter that runs it (a venv's; default: this one); ``app``: another ASGI factory
        of that checkout (``module:function``; the capacity sweep's reference service)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = replace(
            self.settings,
            run_dir=run_dir,
            service_port=free_port(),
            workers=workers,
            service_env={"SEARCH_EMBEDDER": "hash", **(service_env or {})},
        )
        comp = start_service(
            settings,
            database_url or self.pg.url,
            redis_url or self.valkey.url,
            code_root,
            python,
            app,
        )
        assert comp.pid is not None, "start_service returned no pid"
        self.services.append(comp.pid)
        return comp

    def stop_service(self, comp: Component) -> None:
        stop_pid(comp.pid, "service")
        if comp.pid in self.services:
            self.services.remove(comp.pid)

    def start_postgres(self, run_dir: Path, pg_bin: Path | None = None) -> Component:
        """Another PostgreSQL, of ``pg_bin``'s install (default: this project's), on a free
        port with its data under ``run_dir``'s :func:`~ci.stack.postgres.pg_home`; stopped
        (and its data removed with ``remove_data``) by ``close()``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = replace(self.settings, run_dir=run_dir, pg_port=free_port())
        comp, data = start_postgres(settings, pg_bin)
        self.more_pg.append((comp, data, pg_bin))
        return comp

    def restart_postgres(self) -> None:
        self.pg, self.pg_data = start_postgres(self.settings, self.pg_bin)

    def restart_valkey(self) -> None:
        self.valkey = start_valkey(self.settings)

    def close(self, *, remove_data: bool = False) -> None:
        for pid in self.services:
            with contextlib.suppress(Exception):
                stop_pid(pid, "service")
        self.services.clear()
        for pid in self.relays:
            with contextlib.suppress(Exception):
                stop_pid(pid, "relay")
        self.relays.clear()
        with contextlib.suppress(Exception):
            stop_pid(self.valkey.pid, "valkey")
        for comp, data, pg_bin in self.more_pg:
            with contextlib.suppress(Exception):
                stop_postgres(comp, data, pg_bin)
            if remove_data and not pid_alive(comp.pid):
                shutil.rmtree(data.parent, ignore_errors=True)
        self.more_pg.clear()
        stop_postgres(self.pg, self.pg_data, self.pg_bin)
        # the data folder of this set's own PostgreSQL (under /var/tmp as root): ~250 MB
        if remove_data and not pid_alive(self.pg.pid):
            shutil.rmtree(self.pg_data.parent, ignore_errors=True)


def start_server_set(settings: StackSettings, *, pg_bin: Path | None = None) -> ServerSet:
    """PostgreSQL (of ``pg_bin``'s install; default: this project's), then Valkey;
    PostgreSQL is stopped again if Valkey fails."""
    check_tools(postgres=pg_bin is None, valkey=True)
    pg, data = start_postgres(settings, pg_bin)
    try:
        valkey = start_valkey(settings)
    except BaseException:
        stop_postgres(pg, data, pg_bin)
        raise
    return ServerSet(settings, pg, data, valkey, pg_bin=pg_bin)
