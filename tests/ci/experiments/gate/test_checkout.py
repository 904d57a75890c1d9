"""Which harness files a pull request changed, in a real (temporary) git repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.experiments.gate.checkout import (
    BASE_REVISION,
    GATE_MARKER,
    PREDATES_GATE,
    describe_merge,
    harness_changes,
    harness_revision,
    harness_source,
    is_clean_checkout_of,
    resolve_sides,
    run_in_base,
    side_checkouts,
)
from ci.experiments.gate.venv import MARKER, python_version, venv_key


def _git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")  # a machine may have none
    return subprocess.run(
        ["git", "-C", str(repo), *identity, *args], capture_output=True, text=True, check=True
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
    assert not (tmp_path / "trees" / "side1").exists()
    assert str(tmp_path / "trees") not in _git(repo, "worktree", "list")


def test_an_unknown_ref_is_named(repo: Path) -> None:
    with pytest.raises(RunError, match="'nope' does not name a commit"):
        resolve_sides(repo, "nope", "HEAD")
    assert harness_revision(Path("/")) == "unknown"


def test_each_side_is_checked_out_under_its_slot_name(repo: Path, tmp_path: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    cand = _commit(repo, "service/app.py")
    parent = tmp_path / "trees"
    with side_checkouts(repo, base, cand, parent, {"base": "side2", "candidate": "side1"}) as trees:
        assert (trees["base"].worktree, trees["candidate"].worktree) == (
            parent / "side2",
            parent / "side1",
        )
        assert (trees["base"].worktree / "service/app.py").read_text() == "v1\n"
        assert (trees["candidate"].worktree / "service/app.py").read_text() == "v2\n"
    with side_checkouts(repo, cand, base, parent, {"base": "side2", "candidate": "side1"}) as trees:
        assert trees["base"].worktree == parent / "side2"  # the slot, whatever the revision
        assert trees["base"].commit == cand


def test_a_clean_checkout_of_a_commit_is_told_apart(repo: Path, tmp_path: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    _commit(repo, "service/app.py")
    tree = tmp_path / "harness"
    _git(repo, "worktree", "add", "--detach", str(tree), base)
    assert is_clean_checkout_of(tree, base)
    assert not is_clean_checkout_of(tree / "service", base)  # inside it, not its top
    (tree / "service/app.py").write_text("edited\n")
    assert not is_clean_checkout_of(tree, base)


def test_the_harness_is_the_base_revision_once_it_has_the_gate(repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    assert harness_source(repo, before) == PREDATES_GATE
    (repo / GATE_MARKER).parent.mkdir(parents=True)
    (repo / GATE_MARKER).write_text("")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "the gate")
    assert harness_source(repo, _git(repo, "rev-parse", "HEAD")) == BASE_REVISION


def test_a_merge_commit_is_described_as_tested(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature")
    head = _commit(repo, "service/app.py")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "README.md")
    _git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature")
    record = describe_merge(repo, 17, head, 123, 1, merged=True)
    assert record.outcome == "tested"
    assert record.merge_sha == _git(repo, "rev-parse", "HEAD")
    assert record.base_sha == _git(repo, "rev-parse", "HEAD^1") != base
    assert record.reason is None


def test_the_base_harness_runs_from_a_worktree_of_the_base(
    repo: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # the base commit's own `python -m ci.cli`, here one that reports where it runs from
    (repo / "ci" / "cli").mkdir(parents=True)
    (repo / "ci" / "__init__.py").write_text("")
    (repo / "ci" / "cli" / "__init__.py").write_text("")
    (repo / "ci" / "cli" / "__main__.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'file': __file__, 'argv': sys.argv[1:], 'cwd': os.getcwd()}))\n"
        "sys.exit(3)\n"
    )
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "a harness")
    base = _git(repo, "rev-parse", "HEAD")
    cand = _commit(repo, "service/app.py")
    # the base's venv, as the base service's would be cached (this interpreter stands in)
    key = venv_key((repo / "pyproject.toml").read_bytes(), python_version())
    venv = tmp_path / "venvs" / key[:16]
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / MARKER).write_text(json.dumps({"key": key}))
    code = run_in_base(repo, {"base": base, "candidate": cand}, ["--out", "/r"], tmp_path / "venvs")
    assert code == 3  # the harness's own exit code
    ran = json.loads(capfd.readouterr().out.splitlines()[-1])
    tree = Path(ran["cwd"])
    assert ran["file"] == str(tree / "ci" / "cli" / "__main__.py")  # the base's own code
    assert ran["argv"] == [
        "gate", "--base", base, "--candidate", cand, "--repo", str(repo),
        "--harness-source", BASE_REVISION, "--harness-revision", base, "--out", "/r",
    ]  # fmt: skip
    assert not tree.exists()
    assert len(_git(repo, "worktree", "list").splitlines()) == 1  # removed afterwards
