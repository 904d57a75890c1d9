"""``perfci sweep pool|workers``: real runs on a small corpus, and the summary arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci import stack
from ci.cli import main
from ci.errors import ConfigError
from ci.experiments.sweep_load import KNOBS, LoadPoint, recommend, summarise, sweep
from ci.measure.profiles import PROFILES
from ci.measure.run import RunOutcome, RunRequest
from ci.render.sweep import load_table
from ci.settings import StackSettings, repo_sla


def _point(value: int, rnd: int, rps: float, p95: float = 10.0, errors: float = 0.0) -> LoadPoint:
    return LoadPoint(value, rnd, "saturate", rps, p95 / 2, p95, p95 * 2, errors, "run")


def test_summary_takes_medians_and_judges_the_sla() -> None:
    points = [
        _point(1, 1, 100.0),
        _point(1, 2, 120.0),
        _point(1, 3, 110.0),
        _point(2, 1, 190.0),
        _point(2, 2, 210.0),
        _point(2, 3, 200.0),
        _point(4, 1, 205.0, p95=2500.0),  # fastest, but misses the p95 SLA
    ]
    rows = summarise(points, [1, 2, 4], repo_sla())
    assert [(r.value, r.runs, r.throughput_rps) for r in rows] == [
        (1, 3, 110.0),
        (2, 3, 200.0),
        (4, 1, 205.0),
    ]
    assert rows[0].throughput_spread == (100.0, 120.0)
    assert rows[1].relative == pytest.approx(200.0 / 110.0)
    assert [r.meets_sla for r in rows] == [True, True, False]
    assert recommend(rows, "saturate") == 2
    table = load_table(rows, KNOBS["workers"])
    assert "1.82" in table
    assert "MISSES" in table.splitlines()[-1]
    errors = summarise([_point(8, 1, 300.0, errors=0.01)], [8], repo_sla())
    assert not errors[0].meets_sla
    assert recommend(errors, "saturate") is None


def _request(tmp_path: Path) -> RunRequest:
    profile = PROFILES["test"]
    settings = StackSettings(run_dir=tmp_path / "stack")
    return RunRequest(profile, ("saturate",), tmp_path / "runs", settings)


def test_values_are_checked_before_anything_runs(tmp_path: Path) -> None:
    def never(_request: RunRequest, _progress: object) -> RunOutcome:
        raise AssertionError("must not run")

    request = _request(tmp_path)
    with pytest.raises(ConfigError, match="pool value 500 is invalid: expected 1-200"):
        sweep(KNOBS["pool"], [5, 500], request, 1, lambda _m: None, execute=never)
    with pytest.raises(ConfigError, match="values repeat"):
        sweep(KNOBS["workers"], [1, 1], request, 1, lambda _m: None, execute=never)
    with pytest.raises(ConfigError, match="--repeat 0"):
        sweep(KNOBS["workers"], [1], request, 0, lambda _m: None, execute=never)


def test_cli_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "workers", "--values", "1,x"]) == 2
    assert "expected comma-separated integers" in capsys.readouterr().err


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("command", "values"),
    [("pool", "1,4"), ("workers", "1,2")],
)
def test_sweep_runs_the_real_stack_per_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, values: str
) -> None:
    out = tmp_path / "out"
    ports = [str(stack.free_port()) for _ in range(3)]
    args = ["sweep", command, "--values", values, "--profile", "test", "--out", str(out)]
    args += ["--run-dir", str(tmp_path / "stack"), "--pg-port", ports[0]]
    args += ["--redis-port", ports[1], "--port", ports[2], "--seed", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split()[:2] == ["scenario", KNOBS[command].label.split()[0]]
    data = json.loads((out / f"sweep-{command}.json").read_text())
    rows = data["rows"]
    assert [r["value"] for r in rows] == [int(v) for v in values.split(",")]
    for row in rows:
        assert row["scenario"] == "saturate"
        assert row["throughput_rps"] > 0
        assert row["p95_ms"] > 0
        assert row["error_rate"] == 0.0
    assert rows[0]["relative"] == 1.0
    assert (out / f"sweep-{command}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every value ran on its own fresh service, with the value applied
    run_dirs = {p["run_dir"] for p in data["points"]}
    assert len(run_dirs) == 2
    assert not (tmp_path / "stack" / "stack.json").exists(), "the sweep must stop its stacks"
    for run_dir in run_dirs:
        results = json.loads((Path(run_dir) / "results.json").read_text())
        (scenario,) = results["scenarios"]
        value = next(p["value"] for p in data["points"] if p["run_dir"] == run_dir)
        if command == "pool":
            # the service's pool holds at most `value` connections (min size: min(2, value))
            peak = scenario["database"]["max_connections"]
            assert min(2, value) <= peak <= value, (value, peak)
        else:
            # processes that hold the app (a worker loads it: > 50 MB); uvicorn's supervisor
            # and multiprocessing's helper process stay small
            rss: dict[int, float] = {}
            for sample in scenario["resources"]["samples"]:
                rss[sample["pid"]] = max(rss.get(sample["pid"], 0.0), sample["rss_mb"])
            serving = [pid for pid, mb in rss.items() if mb > 50]
            assert len(serving) == value, (value, rss)
