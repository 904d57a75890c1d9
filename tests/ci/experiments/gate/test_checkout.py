"""Which harness files a pull request changed, in a real (temporary) git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.experiments.gate.checkout import (
    harness_changes,
    harness_revision,
    resolve_sides,
    side_checkouts,
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    _git(r, "init", "-q", "-b", "main")
    _git(r, "config", "user.email", "t@example.org")
    _git(r, "config", "user.name", "t")
    for path in ("service/app.py", "ci/cli.py", "scenarios/ramp.js", "perf.toml", "README.md"):
        (r / path).parent.mkdir(parents=True, exist_ok=True)
        (r / path).write_text("v1\n")
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "base")
    return r


def _commit(repo: Path, *paths: str) -> str:
    for path in paths:
        (repo / path).write_text("v2\n")
    _git(repo, "commit", "-q", "-am", "change")
    return _git(repo, "rev-parse", "HEAD")


def test_a_service_change_is_not_a_harness_change(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    cand = _commit(repo, "service/app.py", "README.md")
    assert harness_changes(repo, base, cand) == ()


def test_harness_paths_are_listed(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    cand = _commit(repo, "service/app.py", "perf.toml", "scenarios/ramp.js", "ci/cli.py")
    assert harness_changes(repo, base, cand) == ("ci/cli.py", "perf.toml", "scenarios/ramp.js")


def test_worktrees_of_both_sides_are_removed_afterwards(repo: Path, tmp_path: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    cand = _commit(repo, "service/app.py")
    assert resolve_sides(repo, "HEAD~1", "HEAD") == {"base": base, "candidate": cand}
    with side_checkouts(repo, "HEAD~1", "HEAD", tmp_path / "trees") as trees:
        assert (trees["base"].worktree / "service/app.py").read_text() == "v1\n"
        assert (trees["candidate"].worktree / "service/app.py").read_text() == "v2\n"
        assert trees["candidate"].commit == cand
        assert harness_revision(trees["base"].worktree) == base
    assert not (tmp_path / "trees" / "base").exists()
    assert str(tmp_path / "trees") not in _git(repo, "worktree", "list")


def test_an_unknown_ref_is_named(repo: Path) -> None:
    with pytest.raises(RunError, match="'nope' does not name a commit"):
        resolve_sides(repo, "nope", "HEAD")
    assert harness_revision(Path("/")) == "unknown"
