"""The two sides' checkouts, and what the pull request changed in the harness.

Only the system under test differs between the sides: the harness that runs (``ci/``,
``scenarios/``, ``perf.toml``, the noxfile) is one and the same for both. When a pull
request edits those files, its own edits do not drive its measurement (the base's harness
does), and the verdict says so, so that the comment can tell the reviewer.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ci.errors import RunError
from ci.experiments.pairs import resolve_ref, worktrees
from ci.results.duet import Side

#: Paths whose change is a change of the harness rather than of the system under test.
HARNESS_PATHS: tuple[str, ...] = ("ci", "scenarios", "perf.toml", "noxfile.py")


@dataclass(frozen=True, slots=True)
class SideCheckout:
    side: Side
    ref: str
    commit: str
    worktree: Path


@dataclass(frozen=True, slots=True)
class HarnessInfo:
    """Which harness drove both sides, and whether the pull request touched it."""

    revision: str  # commit of the harness that ran ("unknown" when not in a checkout)
    source: str  # "base revision" or "current checkout (base predates the gate)"
    changed_files: tuple[str, ...]  # harness files that differ between base and candidate

    @property
    def touched(self) -> bool:
        return bool(self.changed_files)


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RunError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def harness_changes(repo: Path, base: str, candidate: str) -> tuple[str, ...]:
    """Harness files that differ between two commits (sorted)."""
    out = _git(repo, "diff", "--name-only", base, candidate, "--", *HARNESS_PATHS)
    return tuple(sorted(line for line in out.splitlines() if line))


def harness_revision(start: Path) -> str:
    """The commit of the checkout that holds ``start`` (the running harness), if any."""
    proc = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def resolve_sides(repo: Path, base_ref: str, candidate_ref: str) -> dict[Side, str]:
    return {"base": resolve_ref(repo, base_ref), "candidate": resolve_ref(repo, candidate_ref)}


@contextlib.contextmanager
def side_checkouts(
    repo: Path, base_ref: str, candidate_ref: str, parent: Path
) -> Iterator[dict[Side, SideCheckout]]:
    """Detached worktrees of both sides under ``parent``; removed on exit."""
    with worktrees(repo, {"base": base_ref, "candidate": candidate_ref}, parent) as trees:
        yield {
            side: SideCheckout(side, trees[side].ref, trees[side].commit, trees[side].path)
            for side in ("base", "candidate")
        }
