"""ci.experiments.worktrees: the real runner (with a stand-in ``perfci run``) and the worktrees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ci.errors import RunError
from ci.experiments import worktrees
from tests.ci.conftest import ResultsDictFactory


def test_fresh_stack_env_has_three_distinct_ports(tmp_path: Path) -> None:
    env = worktrees.fresh_stack_env(tmp_path / "home")
    ports = {env[k] for k in ("PERFCI_PG_PORT", "PERFCI_REDIS_PORT", "PERFCI_SERVICE_PORT")}
    assert len(ports) == 3
    assert env["PERFCI_HOME"] == str(tmp_path / "home")


def test_subprocess_runner_runs_the_checkouts_own_code(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    checkout = tmp_path / "rev"
    (checkout / "ci").mkdir(parents=True)
    (checkout / "ci" / "__init__.py").write_text("")
    template = tmp_path / "template.json"
    template.write_text(json.dumps(results_dict("from-checkout")))
    # A stand-in `perfci run`: records what it was given, writes <out>/<id>/results.json.
    (checkout / "ci" / "cli.py").write_text(
        "import json, os, pathlib, shutil, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "(out / 'r1').mkdir(parents=True)\n"
        f"shutil.copy({str(template)!r}, out / 'r1' / 'results.json')\n"
        "keys = ('PERFCI_HOME', 'PERFCI_PG_PORT', 'PYTHONPATH', 'DATABASE_URL')\n"
        "info = {'argv': sys.argv[1:], 'cwd': os.getcwd(), 'file': __file__,\n"
        "        'env': {k: os.environ.get(k) for k in keys}}\n"
        "(out / 'info.json').write_text(json.dumps(info))\n"
    )
    env = worktrees.fresh_stack_env(tmp_path / "home")
    spec = worktrees.RunSpec("base", checkout, "smoke", tmp_path / "out", env)
    found = worktrees.subprocess_runner(spec)
    assert found == tmp_path / "out" / "r1" / "results.json"
    info: dict[str, Any] = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["argv"] == ["run", "--profile", "smoke", "--out", str(tmp_path / "out")]
    assert Path(info["file"]) == checkout / "ci" / "cli.py"
    assert Path(info["cwd"]) == checkout
    assert info["env"]["PYTHONPATH"] == str(checkout)
    assert info["env"]["PERFCI_HOME"] == str(tmp_path / "home")
    assert info["env"]["PERFCI_PG_PORT"] == env["PERFCI_PG_PORT"]


def test_subprocess_runner_names_a_failed_run(tmp_path: Path) -> None:
    checkout = tmp_path / "rev"
    (checkout / "ci").mkdir(parents=True)
    (checkout / "ci" / "__init__.py").write_text("")
    (checkout / "ci" / "cli.py").write_text("import sys\nprint('kaput')\nsys.exit(2)\n")
    spec = worktrees.RunSpec("candidate", checkout, "smoke", tmp_path / "out", {})
    with pytest.raises(RunError, match=r"the candidate run of .* exited with code 2(.|\n)*kaput"):
        worktrees.subprocess_runner(spec)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository of two commits."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "t@example.com")
    _git(path, "config", "user.name", "t")
    for text in ("one", "two"):
        (path / "file.txt").write_text(text)
        _git(path, "add", "file.txt")
        _git(path, "commit", "-q", "-m", text)
    return path


def _worktrees(repo: Path) -> list[str]:
    out = _git(repo, "worktree", "list", "--porcelain")
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_worktrees_check_out_each_ref(repo: Path, tmp_path: Path) -> None:
    refs = {"base": "HEAD~1", "candidate": "HEAD"}
    with worktrees.worktrees(repo, refs, tmp_path / "trees") as trees:
        assert (trees["base"].path / "file.txt").read_text() == "one"
        assert (trees["candidate"].path / "file.txt").read_text() == "two"
        assert trees["candidate"].commit == _git(repo, "rev-parse", "HEAD")
        assert len(_worktrees(repo)) == 3
    assert len(_worktrees(repo)) == 1
    assert not (tmp_path / "trees" / "base").exists()


@pytest.mark.parametrize("error", [RunError, KeyboardInterrupt])
def test_worktrees_removed_when_the_block_raises(
    repo: Path, tmp_path: Path, error: type[BaseException]
) -> None:
    with pytest.raises(error), worktrees.worktrees(repo, {"a": "HEAD", "b": "HEAD~1"}, tmp_path):
        raise error("boom")
    assert len(_worktrees(repo)) == 1
    assert not (tmp_path / "a").exists()


def test_bad_ref_is_named_and_leaves_no_worktree(repo: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(RunError, match="'no-such-ref'"),
        worktrees.worktrees(repo, {"a": "HEAD", "b": "no-such-ref"}, tmp_path),
    ):
        raise AssertionError("must not get here")
    assert len(_worktrees(repo)) == 1


def test_repo_root_is_the_top_of_the_worktree(repo: Path) -> None:
    (repo / "sub").mkdir()
    assert worktrees.repo_root(repo / "sub") == repo.resolve()
