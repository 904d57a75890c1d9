"""The regression zoo: every patch applies to HEAD; the orchestration commits, gates, tabulates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.errors import ConfigError
from ci.experiments.gate.zoo import (
    ZOO_JSON,
    ZOO_MD,
    ZooResult,
    read_zoo,
    run_zoo,
    select,
    zoo_commit,
)
from ci.render.zoo import zoo_markdown
from tests.ci.experiments.gate.gitrepo import git

REPO = Path(__file__).resolve().parents[4]


def test_the_zoo_lists_every_class_and_only_the_comment_passes() -> None:
    zoo = read_zoo(REPO)
    assert [p.name for p in zoo] == [
        "slower-index", "leak", "tail-stall", "errors", "lower-recall", "smaller-pool",
        "redis-round-trip", "slower-stream", "stdlib-json", "comment-only",
    ]  # fmt: skip
    assert [p.name for p in zoo if p.expected == "pass"] == ["comment-only"]
    assert all(p.metric for p in zoo if p.expected == "fail")


def test_every_patch_applies_to_head_and_touches_only_the_service(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
    head = git(clone, "rev-parse", "HEAD")
    for patch in read_zoo(REPO):
        sha = zoo_commit(clone, head, patch, tmp_path)
        assert git(clone, "rev-parse", f"{sha}^") == head
        files = git(clone, "diff", "--name-only", head, sha).splitlines()
        assert files, patch.name
        assert all(f.startswith("service/") for f in files), (patch.name, files)
    assert git(clone, "worktree", "list").count("\n") == 0  # the temporary worktrees are gone


def _toy_repo(root: Path) -> Path:
    repo = root / "toy"
    (repo / "service").mkdir(parents=True)
    (repo / "zoo").mkdir()
    (repo / "service" / "settings.py").write_text("pool_max_size = 20\nef_search = 80\n")
    git(root, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "toy")
    (repo / "service" / "settings.py").write_text("pool_max_size = 2\nef_search = 80\n")
    (repo / "zoo" / "smaller-pool.patch").write_text(git(repo, "diff") + "\n")
    git(repo, "checkout", "-q", "--", ".")
    (repo / "zoo" / "stale.patch").write_text(
        "--- a/service/settings.py\n+++ b/service/settings.py\n@@ -1,1 +1,1 @@\n"
        "-pool_max_size = 99\n+pool_max_size = 3\n"
    )
    (repo / "zoo" / "README.md").write_text(
        "# zoo\n\n| patch | what users lose | expected | metric |\n|---|---|---|---|\n"
        "| smaller-pool | concurrency | fail | burst |\n"
        "| stale | nothing | pass | - |\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "zoo")
    return repo


def test_each_patch_is_gated_as_a_commit_on_head_and_tabulated(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    seen: list[tuple[str, str, str]] = []

    def gate_one(parent: str, candidate: str, folder: Path) -> tuple[str, tuple[str, ...]]:
        seen.append((parent, git(repo, "rev-parse", f"{candidate}^"), folder.name))
        diff = git(repo, "diff", parent, candidate)
        assert "+pool_max_size = 2" in diff
        return "fail", ("latency_p90 +3.0 %", "burst_latency_p90 +80.1 % over 12 windows")

    out = tmp_path / "out"
    results = run_zoo(repo, read_zoo(repo), out, gate_one)
    assert seen == [(head, head, "smaller-pool")]
    assert [(r.name, r.actual, r.named, r.ok) for r in results] == [
        ("smaller-pool", "fail", True, True),
        ("stale", "does not apply", False, False),
    ]
    assert results[0].reason == "burst_latency_p90 +80.1 % over 12 windows"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    data = json.loads((out / ZOO_JSON).read_text())
    assert data["parent"] == head
    assert [r["ok"] for r in data["results"]] == [True, False]
    assert (out / ZOO_MD).read_text() == zoo_markdown(results)


def test_the_table_says_expected_against_actual() -> None:
    rows = [
        ZooResult("leak", "fail", "fail", "rss", True, "rss_growth +2.1 MB", 301.4, "x"),
        ZooResult("tail-stall", "fail", "pass", "tail", False, "every primary metric", 290, "y"),
        ZooResult("comment-only", "pass", "pass", None, True, "every primary metric", 280, "z"),
    ]
    assert zoo_markdown(rows) == (
        "| patch | expected | actual | metric named | reason | s | |\n"
        "|---|---|---|---|---|---:|---|\n"
        "| leak | fail | fail | rss (yes) | rss\\_growth \\+2\\.1 MB | 301 | ok |\n"
        "| tail\\-stall | fail | pass | tail (NO) | every primary metric | 290 | MISMATCH |\n"
        "| comment\\-only | pass | pass | - | every primary metric | 280 | ok |\n"
        "\n"
        "2 of 3 patches got the expected verdict on the expected metric.\n"
    )


def test_a_bad_table_or_name_is_refused(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    with pytest.raises(ConfigError, match="--only nope: no such patch"):
        select(read_zoo(repo), ["nope"])
    assert [p.name for p in select(read_zoo(repo), ["stale"])] == ["stale"]
    table = repo / "zoo" / "README.md"
    table.write_text(table.read_text().replace("| pass | - |", "| maybe | - |"))
    with pytest.raises(ConfigError, match="expected = 'maybe': must be pass or fail"):
        read_zoo(repo)
    (repo / "zoo" / "extra.patch").write_text("")
    table.write_text(table.read_text().replace("| maybe | - |", "| pass | - |"))
    with pytest.raises(ConfigError, match="no row for extra"):
        read_zoo(repo)


def test_the_command_refuses_only_without_zoo_and_an_unknown_patch(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["calibrate", "--only", "leak"]) == 2
    assert "--only names zoo patches: use it with --zoo" in capsys.readouterr().err
    assert main(["calibrate", "--zoo", "--only", "nope"]) == 2
    assert "--only nope: no such patch" in capsys.readouterr().err
