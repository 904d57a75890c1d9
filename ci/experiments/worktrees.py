"""The git worktrees revisions of the project are checked out in, and the run of one revision.

Each revision is a detached git worktree (:func:`worktrees`, removed on exit however the
block ends). A revision's run goes through one :data:`Runner` function. The real one,
:func:`subprocess_runner`, starts the revision's own ``python -m ci.cli run`` with this
interpreter inside its worktree (``PYTHONPATH`` = the worktree, so its ``ci/`` and
``service/`` are the ones that run), with its own ``PERFCI_HOME`` and free ports; tests
pass a fake one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci.errors import RunError
from ci.stack import free_port

RUN_STOP_TIMEOUT_S = 120.0  # how long an interrupted run may take to stop its stack
# Inherited settings that would make a run share a server instead of starting its own.
_SHARED_STACK_ENV = ("DATABASE_URL", "REDIS_URL", "PERFCI_HOME")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One ``perfci run`` of one revision: all a :data:`Runner` needs to know."""

    label: str  # what the run is for (baseline)
    checkout: Path  # the revision's worktree (its code is what runs)
    profile: str
    out_dir: Path  # the runner leaves results.json here
    env: Mapping[str, str]  # on top of the inherited environment


#: Runs one revision; returns the results.json it wrote under ``spec.out_dir``, or raises
#: ``RunError``.
Runner = Callable[[RunSpec], Path]


@dataclass(frozen=True, slots=True)
class Checkout:
    label: str
    ref: str
    commit: str
    path: Path


# ---------------------------------------------------------------------------- running


def fresh_stack_env(home: Path) -> dict[str, str]:
    """``PERFCI_*`` settings for a stack of its own: its own folder and three free ports."""
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return {
        "PERFCI_HOME": str(home),
        "PERFCI_PG_PORT": str(ports[0]),
        "PERFCI_REDIS_PORT": str(ports[1]),
        "PERFCI_SERVICE_PORT": str(ports[2]),
    }


def subprocess_runner(spec: RunSpec) -> Path:
    """Run the checkout's own ``perfci run`` with this interpreter; log to ``perfci-run.log``."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    log = spec.out_dir / "perfci-run.log"
    env = {k: v for k, v in os.environ.items() if k not in _SHARED_STACK_ENV}
    env.update(spec.env)
    env["PYTHONPATH"] = str(spec.checkout)  # the revision's ci/ and service/, not ours
    cmd = [sys.executable, "-m", "ci.cli", "run", "--profile", spec.profile]
    # absolute: the run's working directory is the revision's worktree, not ours
    cmd += ["--out", str(spec.out_dir.resolve())]
    with open(log, "wb") as fh:
        # A session of its own: Ctrl-C reaches us only, and we stop the run in order below.
        proc = subprocess.Popen(
            cmd,
            cwd=spec.checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait()
        except BaseException:
            _interrupt(proc)
            raise
    # Exit 1 means the run measured a failed threshold: still a measurement.
    found = find_results(spec.out_dir)
    if code not in (0, 1) or found is None:
        tail = "\n  ".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RunError(
            f"the {spec.label} run of {spec.checkout} exited with code {code} "
            f"and left {'no' if found is None else 'a'} results.json in {spec.out_dir}; "
            f"last lines of {log}:\n  {tail}"
        )
    return found


def find_results(out_dir: Path) -> Path | None:
    """``out/results.json`` or the one ``out/<run-id>/results.json`` that ``perfci run`` made."""
    direct = out_dir / "results.json"
    if direct.exists():
        return direct
    nested = sorted(out_dir.glob("*/results.json"))
    return nested[0] if len(nested) == 1 else None


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (the run stops its stack), then SIGKILL the group if it does not finish."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=RUN_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---------------------------------------------------------------------------- git


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RunError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def repo_root(start: Path) -> Path:
    return Path(_git(start, "rev-parse", "--show-toplevel"))


def resolve_ref(repo: Path, ref: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RunError(f"git ref {ref!r} does not name a commit in {repo}")
    return proc.stdout.strip()


@contextlib.contextmanager
def worktrees(repo: Path, refs: Mapping[str, str], parent: Path) -> Iterator[dict[str, Checkout]]:
    """Detached worktrees of ``refs`` (label -> ref) under ``parent``; removed on exit."""
    commits = {label: resolve_ref(repo, ref) for label, ref in refs.items()}
    made: list[Path] = []
    try:
        out: dict[str, Checkout] = {}
        for label, ref in refs.items():
            path = parent / label
            _git(repo, "worktree", "add", "--detach", str(path), commits[label])
            made.append(path)
            out[label] = Checkout(label, ref, commits[label], path)
        yield out
    finally:
        for path in reversed(made):
            remove_worktree(repo, path)


def remove_worktree(repo: Path, path: Path) -> None:
    proc = subprocess.run(
        ["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:  # e.g. the folder is already gone: forget it anyway
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=False)
