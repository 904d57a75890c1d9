"""ci.history.datapush against a local bare repository, races included."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.history.datapush import Apply, auth_env, push_change

BRANCH = "perf-data"


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    return path


def _files(bare: Path) -> dict[str, str]:
    names = _git(bare, "ls-tree", "-r", "--name-only", BRANCH).splitlines()
    return {n: _git(bare, "show", f"{BRANCH}:{n}") for n in names}


def _append(line: str) -> Apply:
    def apply(workdir: Path) -> bool:
        path = workdir / "rows.txt"
        old = path.read_text().splitlines() if path.exists() else []
        if line in old:
            return False
        path.write_text("\n".join(sorted([*old, line])) + "\n")
        return True

    return apply


def test_first_push_creates_an_orphan_branch(tmp_path: Path, bare: Path) -> None:
    out = push_change(tmp_path / "w", str(bare), BRANCH, _append("a"), "add a")
    assert out.created_branch
    assert out.attempts == 1
    assert out.commit is not None
    assert _files(bare) == {"rows.txt": "a"}
    assert _git(bare, "rev-list", "--count", BRANCH) == "1"


def test_a_lost_race_is_fetched_reapplied_and_pushed(tmp_path: Path, bare: Path) -> None:
    push_change(tmp_path / "w1", str(bare), BRANCH, _append("a"), "add a")
    raced: list[int] = []
    inner = _append("c")

    def apply_after_a_rival(workdir: Path) -> bool:
        # Between our fetch and our push, another run pushes its row.
        if not raced:
            raced.append(1)
            push_change(tmp_path / "rival", str(bare), BRANCH, _append("b"), "add b")
        return inner(workdir)

    pauses: list[float] = []
    out = push_change(
        tmp_path / "w2", str(bare), BRANCH, apply_after_a_rival, "add c",
        rng=random.Random(1), sleep=pauses.append,
    )  # fmt: skip
    assert out.attempts == 2
    assert len(pauses) == 1
    assert not out.created_branch
    assert _files(bare) == {"rows.txt": "a\nb\nc"}
    # no force push: every row's commit is in the branch's history
    assert _git(bare, "log", "--format=%s", BRANCH).splitlines() == ["add c", "add b", "add a"]


def test_nothing_to_add_pushes_nothing(tmp_path: Path, bare: Path) -> None:
    push_change(tmp_path / "w", str(bare), BRANCH, _append("a"), "add a")
    again = push_change(tmp_path / "w", str(bare), BRANCH, _append("a"), "add a")
    assert again.commit is None
    assert _git(bare, "rev-list", "--count", BRANCH) == "1"


def test_a_push_that_keeps_losing_gives_up_with_the_reason(tmp_path: Path, bare: Path) -> None:
    push_change(tmp_path / "w1", str(bare), BRANCH, _append("a"), "add a")
    n = iter(range(100))

    def always_raced(workdir: Path) -> bool:
        push_change(tmp_path / "rival", str(bare), BRANCH, _append(f"r{next(n)}"), "rival")
        return _append("mine")(workdir)

    with pytest.raises(RunError, match=r"attempt 3 of 3.*(fetch first|non-fast-forward)"):
        push_change(
            tmp_path / "w2", str(bare), BRANCH, always_raced, "mine", attempts=3,
            sleep=lambda _s: None,
        )  # fmt: skip


def test_other_push_failures_are_not_retried(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="ls-remote"):
        push_change(tmp_path / "w", str(tmp_path / "missing.git"), BRANCH, _append("a"), "m")


def test_the_token_goes_to_git_through_the_environment_only() -> None:
    env = auth_env("https://github.com/acme/search.git", "ghs_secret")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("AUTHORIZATION: basic ")
    assert "ghs_secret" not in env["GIT_CONFIG_VALUE_0"]  # base64 of x-access-token:...
    assert auth_env("https://github.com/acme/search.git", None) == {}
    with pytest.raises(RunError, match="https"):
        auth_env("http://example.com/repo.git", "t")
