"""ci.ab: A/B orchestration with a fake runner on a real git repository."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.errors import ResultsError, RunError
from ci.experiments import ab, baseline
from ci.experiments.pairs import RunSpec
from ci.settings import PerfConfig
from tests.ci.conftest import ResultsDictFactory


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two commits: HEAD~1 is the "fast" revision (factor 1.0), HEAD is 20 % slower."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "t@example.com")
    _git(path, "config", "user.name", "t")
    for factor in ("1.0", "1.2"):
        (path / "factor.txt").write_text(factor)
        _git(path, "add", "factor.txt")
        _git(path, "commit", "-q", "-m", f"factor {factor}")
    return path


def _worktrees(repo: Path) -> list[str]:
    out = _git(repo, "worktree", "list", "--porcelain")
    return [line for line in out.splitlines() if line.startswith("worktree ")]


class Recorder:
    """A fake runner: results scaled by the checkout's factor.txt (its "code") and the
    slowdown env, with a little per-run noise; remembers every call."""

    def __init__(self, results_dict: ResultsDictFactory, fail_at: int | None = None) -> None:
        self.make = results_dict
        self.calls: list[RunSpec] = []
        self.fail_at = fail_at
        self.noise = random.Random(11)

    def __call__(self, spec: RunSpec) -> Path:
        self.calls.append(spec)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RunError(f"fake run {len(self.calls)} failed")
        assert (spec.checkout / ".git").exists()
        factor = float((spec.checkout / "factor.txt").read_text())
        delay = float(spec.env.get("SEARCH_DEBUG_REQUEST_DELAY_MS", "0"))
        data = self.make(f"{spec.label}-{spec.pair}", profile=spec.profile, scenarios=("search",))
        scale = factor * (1 + self.noise.gauss(0, 0.01))
        for scenario in data["scenarios"]:
            lat: dict[str, float] = scenario["latency_ms"]
            for key in lat:
                lat[key] = lat[key] * scale + delay * 10  # delay: 10 requests per figure
            scenario["throughput_rps"] /= scale
        out = spec.out_dir / f"run-{len(self.calls)}" / "results.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(data))
        return out


def test_regression_fails_with_randomised_recorded_order(
    repo: Path, tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    runner = Recorder(results_dict)
    out = tmp_path / "report"
    outcome = ab.run_ab(repo, "HEAD~1", "HEAD", 6, "test", out, PerfConfig(), seed=5, runner=runner)
    assert outcome.judgement.verdict.status == "fail"
    assert outcome.judgement.exit_code == 1
    # The order is what actually ran, pair by pair, and both orders occur.
    ran = [spec.label for spec in runner.calls]
    assert ran == [label for pair in outcome.order for label in pair]
    assert all(sorted(pair) == ["base", "candidate"] for pair in outcome.order)
    assert {pair[0] for pair in outcome.order} == {"base", "candidate"}
    assert [s.pair for s in runner.calls] == [i // 2 for i in range(12)]
    # Each run had a stack of its own.
    homes = {s.env["PERFCI_HOME"] for s in runner.calls}
    assert len(homes) == 12
    for s in runner.calls:
        ports = {s.env[k] for k in ("PERFCI_PG_PORT", "PERFCI_REDIS_PORT", "PERFCI_SERVICE_PORT")}
        assert len(ports) == 3
    # Worktrees are gone; the report folder is what `perfci comment` reads.
    assert len(_worktrees(repo)) == 1
    assert not any(s.checkout.exists() for s in runner.calls)
    for name in ("report.html", "summary.md", "comment.md", "verdict.json", "ab.json"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "inputs").iterdir())[:2] == ["base-1.json", "base-2.json"]
    manifest = json.loads((out / "ab.json").read_text())
    assert manifest["order"] == [list(p) for p in outcome.order]
    assert manifest["candidate"]["commit"] == _git(repo, "rev-parse", "HEAD")
    assert manifest["verdict"] == "fail"


def test_no_change_passes(repo: Path, tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    outcome = ab.run_ab(
        repo,
        "HEAD",
        "HEAD",
        6,
        "test",
        tmp_path / "out",
        PerfConfig(),
        seed=1,
        runner=Recorder(results_dict),
    )
    assert outcome.judgement.verdict.status in ("pass", "warn")
    assert outcome.judgement.exit_code == 0


@pytest.mark.parametrize("error", [RunError, KeyboardInterrupt])
def test_worktrees_removed_when_the_runner_raises(
    repo: Path, tmp_path: Path, results_dict: ResultsDictFactory, error: type[BaseException]
) -> None:
    runner = Recorder(results_dict, fail_at=3)

    def failing(spec: RunSpec) -> Path:
        if len(runner.calls) == 2:
            runner.calls.append(spec)
            raise error("boom")
        return runner(spec)

    with pytest.raises(error):
        ab.run_ab(repo, "HEAD~1", "HEAD", 5, "test", tmp_path / "o", PerfConfig(), runner=failing)
    assert len(runner.calls) == 3
    assert len(_worktrees(repo)) == 1
    assert not any(s.checkout.exists() for s in runner.calls)


def test_bad_ref_is_named_and_leaves_no_worktree(repo: Path, tmp_path: Path) -> None:
    def never(spec: RunSpec) -> Path:
        raise AssertionError("must not run")

    with pytest.raises(RunError, match="'no-such-ref'"):
        ab.run_ab(
            repo, "HEAD", "no-such-ref", 5, "test", tmp_path / "o", PerfConfig(), runner=never
        )
    assert len(_worktrees(repo)) == 1


def test_cli_reports_bad_ref_as_usage_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["ab", "--base", "nope", "--pairs", "5", "--out", "x"]) == 2
    assert "error: git ref 'nope' does not name a commit" in capsys.readouterr().err
    assert main(["calibrate", "--aa", "0", "--slowed", "0"]) == 2
    assert "ask for at least one verdict" in capsys.readouterr().err
    assert main(["ab", "--base", "HEAD", "--scenario", "nope", "--out", "x2"]) == 2
    assert "scenario 'nope' is unknown" in capsys.readouterr().err
    assert main(["calibrate", "--slowdown", "0", "--out", "y2"]) == 2
    assert not (repo / "x2").exists()
    assert not (repo / "y2").exists()


def test_baseline_keeps_history(
    repo: Path, tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    out = tmp_path / "baseline"
    stamps = iter(["2026-11-20T08:00:00+00:00", "2026-11-27T09:30:00+01:00"])

    def runner(spec: RunSpec) -> Path:
        data = results_dict("b", commit="a" * 40)
        data["run"]["created_at"] = next(stamps)
        path = spec.out_dir / "run-1" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(data))
        return path

    first = baseline.refresh_baseline(repo, "test", out, runner=runner)
    assert first.archived is None
    second = baseline.refresh_baseline(repo, "test", out, runner=runner)
    assert second.archived == out / "history" / f"20261120T080000Z-{'a' * 12}.json"
    assert json.loads(second.archived.read_text())["run"]["created_at"].startswith("2026-11-20")
    assert second.results.run.created_at.startswith("2026-11-27T09:30")
    assert json.loads((out / "results.json").read_text())["run"]["created_at"].startswith(
        "2026-11-27"
    )


def test_baseline_refuses_a_bad_new_file(
    repo: Path, tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    out = tmp_path / "baseline"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(results_dict("old")))

    def runner(spec: RunSpec) -> Path:
        path = spec.out_dir / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"schema_version": 1}')
        return path

    with pytest.raises(ResultsError):
        baseline.refresh_baseline(repo, "test", out, runner=runner)
    assert json.loads((out / "results.json").read_text())["run"]["id"] == "old"
    assert not (out / "history").exists()
