"""ci.history.backfill: which commits, one worktree each, rows in the store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.errors import ConfigError, RunError, StackError
from ci.experiments.worktrees import Checkout
from ci.history.backfill import backfill, select_commits
from ci.history.detect import primary_metrics
from ci.history.store import list_series, read_series
from ci.settings import load_perf_config
from tests.ci.conftest import ResultsDictFactory

REPO = Path(__file__).resolve().parents[3]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "--quiet", "-b", "main")
    commits = []
    for i in range(1, 6):
        (path / "VERSION").write_text(f"{i}\n")
        _git(path, "add", "VERSION")
        _git(path, "commit", "--quiet", "-m", f"change {i}")
        commits.append(_git(path, "rev-parse", "HEAD"))
    return path, commits


def test_commits_from_to_inclusive_oldest_first(repo: tuple[Path, list[str]]) -> None:
    path, commits = repo
    assert select_commits(path, commits[1], commits[4]) == commits[1:]
    assert select_commits(path, "HEAD~2", "HEAD") == commits[2:]
    # every 2nd, counted back from --to, so --to is always measured
    assert select_commits(path, commits[0], commits[4], every=2) == [
        commits[0],
        commits[2],
        commits[4],
    ]
    assert select_commits(path, commits[1], commits[4], every=2) == [commits[2], commits[4]]


def test_bad_ranges_are_refused(repo: tuple[Path, list[str]]) -> None:
    path, commits = repo
    with pytest.raises(ConfigError, match="not an ancestor"):
        select_commits(path, commits[4], commits[1])
    with pytest.raises(ConfigError, match="rev-parse"):
        select_commits(path, "no-such-ref", "HEAD")
    with pytest.raises(ConfigError, match="--every 0"):
        select_commits(path, "HEAD~1", "HEAD", every=0)


def test_each_commit_is_measured_in_its_own_worktree_and_added(
    repo: tuple[Path, list[str]], tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    path, commits = repo
    seen: list[tuple[str, str]] = []

    def measure(checkout: Checkout, scratch: Path) -> Path:
        # the worktree holds the commit's own files
        seen.append((checkout.commit, (checkout.path / "VERSION").read_text().strip()))
        doc = results_dict(f"run-{len(seen)}", scenarios=("arrival_rate",))
        doc["scenarios"][0]["latency_ms"]["p95"] = 100.0 + len(seen)
        out = scratch / "results.json"
        out.write_text(json.dumps(doc))
        return out

    store = tmp_path / "store"
    outcome = backfill(
        path, commits[2:], store, measure=measure, profile="pr", machine_class=None,
        directions={},
    )  # fmt: skip
    assert seen == [(commits[2], "3"), (commits[3], "4"), (commits[4], "5")]
    assert outcome.failed == ()
    (key,) = list_series(store)
    series = read_series(store, key)
    assert series.commits == tuple(commits[2:])  # in commit order, by the commits' own time
    assert series.values("latency_p95") == [101.0, 102.0, 103.0]
    assert [r.subject for r in series.rows] == ["change 3", "change 4", "change 5"]
    assert _git(path, "worktree", "list").count("\n") == 0  # every worktree removed


def test_a_commit_that_cannot_be_measured_is_reported_and_skipped(
    repo: tuple[Path, list[str]], tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    path, commits = repo

    def measure(checkout: Checkout, scratch: Path) -> Path:
        if checkout.commit == commits[3]:
            raise StackError("the service did not start")
        out = scratch / "results.json"
        out.write_text(json.dumps(results_dict(scenarios=("arrival_rate",))))
        return out

    outcome = backfill(
        path, commits[2:], tmp_path / "s", measure=measure, profile="pr", machine_class=None,
        directions={},
    )  # fmt: skip
    assert [c for c, _ in outcome.measured] == [commits[2], commits[4]]
    assert outcome.failed == ((commits[3], "the service did not start"),)

    def never(checkout: Checkout, scratch: Path) -> Path:
        raise StackError("no")

    with pytest.raises(RunError, match="no commit could be measured"):
        backfill(path, commits[2:], tmp_path / "t", measure=never, profile="pr",
                 machine_class=None, directions={})  # fmt: skip


@pytest.mark.stack
@pytest.mark.slow
def test_backfill_over_three_real_commits_writes_three_rows_per_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three commits of this repository, each in its own worktree and stack, measured with
    today's harness (test profile, the tracked scenario only)."""
    monkeypatch.delenv("PERFCI_MACHINE_CLASS", raising=False)
    if int(_git(REPO, "rev-list", "--count", "HEAD")) < 3:
        pytest.skip("a shallow clone: backfill needs three commits of history")
    commits = _git(REPO, "rev-list", "--first-parent", "--reverse", "-3", "HEAD").split()
    store = tmp_path / "store"
    code = main([
        "history", "backfill", "--from", commits[0], "--to", commits[2], "--store", str(store),
        "--profile", "test", "--scenario", "arrival_rate", "--git-repo", str(REPO),
    ])  # fmt: skip
    assert code == 0
    (key,) = list_series(store)
    assert (key.profile, key.scenario) == ("test", "arrival_rate")
    series = read_series(store, key)
    assert series.commits == tuple(commits)
    for metric in primary_metrics(load_perf_config()):
        values = series.values(metric.name)
        assert len(values) == 3
        assert all(v is not None for v in values), metric.name
