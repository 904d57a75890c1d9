"""ci.experiments.baseline: the stored baseline is replaced atomically, the old one kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.errors import ResultsError
from ci.experiments import baseline
from ci.experiments.worktrees import RunSpec
from tests.ci.conftest import ResultsDictFactory


def test_baseline_keeps_history(tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    out = tmp_path / "baseline"
    stamps = iter(["2026-11-20T08:00:00+00:00", "2026-11-27T09:30:00+01:00"])

    def runner(spec: RunSpec) -> Path:
        data = results_dict("b", commit="a" * 40)
        data["run"]["created_at"] = next(stamps)
        path = spec.out_dir / "run-1" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(data))
        return path

    first = baseline.refresh_baseline(tmp_path, "test", out, runner=runner)
    assert first.archived is None
    second = baseline.refresh_baseline(tmp_path, "test", out, runner=runner)
    assert second.archived == out / "history" / f"20261120T080000Z-{'a' * 12}.json"
    assert json.loads(second.archived.read_text())["run"]["created_at"].startswith("2026-11-20")
    assert second.results.run.created_at.startswith("2026-11-27T09:30")
    assert json.loads((out / "results.json").read_text())["run"]["created_at"].startswith(
        "2026-11-27"
    )


def test_baseline_refuses_a_bad_new_file(tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    out = tmp_path / "baseline"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(results_dict("old")))

    def runner(spec: RunSpec) -> Path:
        path = spec.out_dir / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"schema_version": 1}')
        return path

    with pytest.raises(ResultsError):
        baseline.refresh_baseline(tmp_path, "test", out, runner=runner)
    assert json.loads((out / "results.json").read_text())["run"]["id"] == "old"
    assert not (out / "history").exists()
