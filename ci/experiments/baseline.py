"""``perfci baseline``: run this checkout and install its results as the stored baseline.

The previous ``results.json`` is archived under ``history/`` (named by its creation time and
commit) before the new one replaces it atomically; a bad new file is refused first.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci.errors import ResultsError
from ci.experiments.worktrees import Progress, Runner, RunSpec, fresh_stack_env, subprocess_runner

if TYPE_CHECKING:
    from ci.results import RunResults


@dataclass(frozen=True, slots=True)
class BaselineOutcome:
    installed: Path
    archived: Path | None
    results: RunResults


def refresh_baseline(
    checkout: Path,
    profile: str,
    out_dir: Path,
    *,
    runner: Runner = subprocess_runner,
    progress: Progress = lambda _m: None,
) -> BaselineOutcome:
    """Run ``checkout``; archive the old ``results.json`` under ``history/``; install the new."""
    from ci.results import load_results

    with tempfile.TemporaryDirectory(prefix="perfci-baseline-") as tmp:
        env = fresh_stack_env(Path(tmp) / "home")
        spec = RunSpec("baseline", checkout, profile, Path(tmp) / "run", env)
        progress(f"baseline run of {checkout} ({profile} profile)")
        fresh = runner(spec)
        results = load_results(fresh)  # refuse a bad file before touching the baseline
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "results.json"
        archived = _archive(target, out_dir / "history") if target.exists() else None
        staged = out_dir / ".results.json.new"
        shutil.copyfile(fresh, staged)
        os.replace(staged, target)
    return BaselineOutcome(target, archived, results)


def _archive(current: Path, history: Path) -> Path:
    """Move ``current`` to ``history/<created_at>-<commit>.json`` (no ``:``: artifact-safe)."""
    from ci.results import load_results

    try:
        old = load_results(current)
        stamp = _compact_time(old.run.created_at)
        commit = (old.run.git_commit or "nocommit")[:12]
    except ResultsError:  # an unreadable old baseline is still kept, named by its mtime
        stamp = dt.datetime.fromtimestamp(current.stat().st_mtime, dt.UTC).strftime(
            "%Y%m%dT%H%M%SZ"
        )
        commit = "unreadable"
    history.mkdir(parents=True, exist_ok=True)
    dest = history / f"{stamp}-{commit}.json"
    n = 1
    while dest.exists():
        dest = history / f"{stamp}-{commit}-{n}.json"
        n += 1
    os.replace(current, dest)
    return dest


def _compact_time(iso: str) -> str:
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return "".join(c for c in iso if c.isalnum())[:20] or "undated"
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y%m%dT%H%M%SZ")
