"""Which commits are measured, which harness measures them, and the sides' checkouts.

This module is the one place that resolves the refs and picks the harness:

=================================================  ============================================
the running checkout                               harness that drives both sides
=================================================  ============================================
is the base commit, clean (``nox -s pr`` from a    this checkout, which is also the base side's
checkout of the base; or the re-run below)         worktree
the base commit has the gate                       the base commit: a worktree of it, run in the
                                                   base service's own venv (:func:`run_in_base`)
the base commit predates the gate                  this checkout
=================================================  ============================================

Only the system under test differs between the sides: the harness that runs (``ci/``,
``scenarios/``, ``perf.toml``, the noxfile) is one and the same for both. When a pull
request edits those files, its own edits do not drive its measurement, and the verdict says
so, so that the comment can tell the reviewer.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci.errors import RunError
from ci.experiments.gate.symmetry import slot_name
from ci.experiments.gate.venv import ensure_service_venv
from ci.experiments.worktrees import remove_worktree, resolve_ref, worktrees
from ci.judge.gate_folder import PrOutcome, PrRecord
from ci.results.duet import SIDES, Side

#: Paths whose change is a change of the harness rather than of the system under test.
HARNESS_PATHS: tuple[str, ...] = ("ci", "scenarios", "perf.toml", "noxfile.py")
#: A commit has the gate when it holds this file.
GATE_MARKER = "ci/experiments/gate/runner.py"
BASE_REVISION = "base revision"
PREDATES_GATE = "current checkout (base predates the gate)"

Progress = Callable[[str], None]


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
    source: str  # BASE_REVISION or PREDATES_GATE
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


def running_tree() -> Path:
    """The checkout this harness runs from (the folder holding ``ci/``)."""
    return Path(__file__).resolve().parents[3]


def harness_revision(start: Path) -> str:
    """The commit of the checkout that holds ``start`` (the running harness), if any."""
    proc = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def is_clean_checkout_of(tree: Path, commit: str) -> bool:
    """``tree`` is the top of a checkout of ``commit`` without changes to tracked files (an
    installed copy of ``ci/`` inside some checkout is not)."""
    top = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != tree.resolve():
        return False
    if harness_revision(tree) != commit:
        return False
    proc = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and not proc.stdout.strip()


def has_gate(repo: Path, commit: str) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-e", f"{commit}:{GATE_MARKER}"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def resolve_sides(repo: Path, base_ref: str, candidate_ref: str) -> dict[Side, str]:
    return {"base": resolve_ref(repo, base_ref), "candidate": resolve_ref(repo, candidate_ref)}


def harness_source(repo: Path, base: str) -> str | None:
    """Where the harness comes from (the table above): ``None`` if this checkout is the base
    commit's and drives both sides itself, :data:`PREDATES_GATE` if this checkout drives
    them for a base without the gate, :data:`BASE_REVISION` if the base must be run."""
    if is_clean_checkout_of(running_tree(), base):
        return None
    return BASE_REVISION if has_gate(repo, base) else PREDATES_GATE


def run_in_base(
    repo: Path,
    commits: Mapping[Side, str],
    argv: Sequence[str],
    venv_root: Path,
    progress: Progress = lambda _m: None,
) -> int:
    """``perfci gate`` of the base commit, from a worktree of it, in the base service's venv
    (the same cached venv the base side's service then runs in); its exit code."""
    base = commits["base"]
    with tempfile.TemporaryDirectory(prefix="perfci-harness-") as tmp:
        tree = Path(tmp) / "harness"
        _git(repo, "worktree", "add", "--detach", str(tree), base)
        try:
            venv = ensure_service_venv(tree, venv_root, progress)
            cmd = [
                str(venv.python), "-m", "ci.cli", "gate",
                "--base", base, "--candidate", commits["candidate"], "--repo", str(repo),
                "--harness-source", BASE_REVISION, "--harness-revision", base, *argv,
            ]  # fmt: skip
            env = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "PATH": os.pathsep.join([str(venv.python.parent), os.environ.get("PATH", "")]),
            }
            progress(f"the base's harness ({base[:12]}) measures both sides")
            sys.stdout.flush()
            return subprocess.run(cmd, cwd=tree, env=env, check=False).returncode
        finally:
            remove_worktree(repo, tree)


@contextlib.contextmanager
def side_checkouts(
    repo: Path,
    base_ref: str,
    candidate_ref: str,
    parent: Path,
    slots: Mapping[Side, str] | None = None,
) -> Iterator[dict[Side, SideCheckout]]:
    """Detached worktrees of both sides under ``parent``, each named by its slot (the
    seed's deal, :mod:`~ci.experiments.gate.symmetry`: equally long paths), made in the
    slots' order; removed on exit."""
    names = slots or {side: slot_name(i) for i, side in enumerate(SIDES)}
    assert len({len(n) for n in names.values()}) == 1, f"slot names of two lengths: {names}"
    refs = {"base": base_ref, "candidate": candidate_ref}
    order = sorted(SIDES, key=lambda side: names[side])
    with worktrees(repo, {names[s]: refs[s] for s in order}, parent) as trees:
        yield {
            side: SideCheckout(
                side, trees[names[side]].ref, trees[names[side]].commit, trees[names[side]].path
            )
            for side in SIDES
        }


# -- pr.json ---------------------------------------------------------------------------


def _parents(repo: Path) -> list[str]:
    return _git(repo, "rev-list", "--parents", "-n", "1", "HEAD").split()


def describe_merge(
    repo: Path, pr: int, head: str, run_id: int, run_attempt: int, merged: bool
) -> PrRecord:
    """``pr.json`` for the checkout of ``refs/pull/N/merge`` at ``repo`` (``merged`` False:
    that checkout failed). The candidate is HEAD, the base its first parent."""
    outcome: PrOutcome = "tested"
    reason = merge = base = None
    if not merged:
        outcome = "cannot-merge"
        reason = (
            f"refs/pull/{pr}/merge could not be checked out: the pull request does not merge "
            "cleanly into its base"
        )
    else:
        parents = _parents(repo)
        if len(parents) != 3:
            outcome = "cannot-merge"
            reason = "the checked-out commit is not a merge of the pull request into its base"
        else:
            merge, base, merged_head = parents
            if merged_head != head:
                outcome = "superseded"
                reason = "the pull request's head moved on after this run was triggered"
    return PrRecord(
        pr=pr,
        head_sha=head,
        run_id=run_id,
        run_attempt=run_attempt,
        outcome=outcome,
        merge_sha=merge,
        base_sha=base,
        reason=reason,
    )
