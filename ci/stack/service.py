"""The service under uvicorn (or granian), with its health and readiness checks."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ci.errors import StackError
from ci.settings import StackSettings
from ci.stack.process import check_port_free, module_available, spawn, stop_pid, wait_until
from ci.stack.state import Component

# The service's ASGI factory (service/ and ci/ never import each other: a string only).
APP_FACTORY = "service.http.app:create_app"
# ...and where revisions from before the package split keep it (history backfill runs them).
LEGACY_APP_FACTORY = "service.app:create_app"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def app_factory(code_root: Path) -> str:
    """The ASGI factory of the checkout at ``code_root``."""
    return (
        APP_FACTORY if (code_root / "service" / "http" / "app.py").exists() else LEGACY_APP_FACTORY
    )


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


def service_command(
    settings: StackSettings,
    code_root: Path = PROJECT_ROOT,
    python: Path | None = None,
    app: str | None = None,
) -> list[str]:
    """The server's command line; ``python``: the interpreter (a venv's), default this one;
    ``app``: another ASGI factory of the checkout (``module:function``), default its service."""
    factory = app or app_factory(code_root)
    exe = str(python) if python is not None else sys.executable
    common = [
        *["--host", settings.host, "--port", str(settings.service_port)],
        *["--workers", str(settings.workers), "--loop", "uvloop", "--backlog", "4096"],
    ]
    if settings.server == "granian":
        if shutil.which("granian") is None and not module_available("granian"):
            raise StackError("server=granian but granian is not installed (pip install granian)")
        return [
            *[exe, "-m", "granian", "--interface", "asgi", "--factory"],
            *common,
            *["--no-ws", factory],
        ]
    return [
        *[exe, "-m", "uvicorn", factory, "--factory"],
        *common,
        *["--http", "httptools", "--no-access-log", "--timeout-keep-alive", "30"],
        *["--log-level", "warning"],
    ]


def start_service(
    settings: StackSettings,
    database_url: str,
    redis_url: str,
    code_root: Path | None = None,
    python: Path | None = None,
    app: str | None = None,
) -> Component:
    """The service of this checkout, or of the one at ``code_root`` (its own ``service/``),
    run by ``python`` (a venv's interpreter: that revision's dependencies) or this one."""
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
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root)  # that revision's service/, not ours
    root = code_root or PROJECT_ROOT
    proc = spawn(service_command(settings, root, python, app), log, env=env, cwd=root)
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
