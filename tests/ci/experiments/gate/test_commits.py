"""A commit on a parent in a temporary worktree: the caller's checkout stays as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.experiments.gate.commits import commit_on, git


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    ident = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), *ident, "commit", "-q", "-m", "one"], check=True)
    return repo


def test_the_edit_becomes_a_commit_on_the_parent(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("uncommitted\n")

    def edit(tree: Path) -> None:
        (tree / "a.txt").write_text("one\ntwo\n")
        (tree / "b.txt").write_text("new\n")

    sha = commit_on(repo, head, tmp_path / "work", "add two", edit)
    assert git(repo, "rev-parse", f"{sha}^") == head
    assert git(repo, "log", "-1", "--format=%s %an", sha) == "add two perfci"
    assert git(repo, "diff", "--name-only", head, sha).splitlines() == ["a.txt", "b.txt"]
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / "a.txt").read_text() == "uncommitted\n"
    assert not (tmp_path / "work").exists()


def test_a_failing_edit_leaves_no_worktree(tmp_path: Path) -> None:
    repo = _repo(tmp_path)

    def edit(tree: Path) -> None:
        git(tree, "apply", "--index", str(tmp_path / "missing.patch"))

    with pytest.raises(RunError, match=r"git apply --index .*missing\.patch"):
        commit_on(repo, "HEAD", tmp_path / "work", "never", edit)
    assert git(repo, "worktree", "list").count("\n") == 0
    assert git(repo, "rev-list", "--count", "--all") == "1"
