"""``perfci run``: the test profile against a real stack with real k6, and CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci import stack
from ci.cli import main
from ci.measure.profiles import PROFILES
from ci.measure.run import FALLBACK_LABEL, RunRequest, execute
from ci.measure.vegeta import find_vegeta
from ci.results import load_results
from ci.settings import StackSettings


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_test_profile_against_the_real_stack(tmp_path: Path) -> None:
    settings = StackSettings(
        run_dir=tmp_path / "stack",
        pg_port=stack.free_port(),
        redis_port=stack.free_port(),
        service_port=stack.free_port(),
    )
    profile = PROFILES["test"]
    messages: list[str] = []
    outcome = execute(
        RunRequest(profile, profile.scenarios, tmp_path / "reports", settings), messages.append
    )
    state_file = settings.run_dir / "stack.json"
    assert not state_file.exists(), "the run must stop the stack it started"

    results = load_results(outcome.run_dir / "results.json")  # validates against the schema
    assert results.scenario_names == profile.scenarios
    assert results.run.corpus is not None
    assert results.run.corpus.docs == profile.docs
    for s in results.scenarios:
        lat = s.latency_ms
        assert s.requests > 0, s.name
        assert s.throughput_rps > 0, s.name
        assert lat.minimum <= lat.p50 <= lat.p95 <= lat.p99 <= lat.p999 <= lat.maximum, s.name
        assert s.error_rate == 0.0, f"{s.name}: errors on a healthy stack"
        # dropped iterations depend on how busy the shared cores are; the rest must pass
        judged = [t for t in s.thresholds if t.metric != "dropped_iterations"]
        assert all(t.ok for t in judged), (s.name, judged)
        assert s.timeseries, s.name
        assert sum(p.rps for p in s.timeseries) == s.requests, s.name
        assert s.resources.samples, s.name
        assert s.resources.peak_rss_mb is not None
        assert s.resources.peak_rss_mb > 10
        assert s.cache is not None, s.name
        assert s.cache.db_searches > 0, s.name
        assert s.database is not None, s.name
        assert s.database.calls > 0, s.name
    sse = results.scenario("sse")
    assert sse.ttfe_ms is not None
    assert sse.ttfe_ms.p50 <= sse.latency_ms.p99
    assert results.scenario("ramp").ttfe_ms is None
    # every held connection was open at once, counted on the server side
    assert outcome.peak_connections["connections"] >= profile.connections
    peak = outcome.peak_connections["connections"]
    assert results.run.settings["peak_connections_connections"] == peak
    attack = results.scenario("vegeta")
    if find_vegeta() is None:
        assert attack.tool == "k6-constant-arrival-rate"
        assert attack.label == FALLBACK_LABEL
    else:
        assert attack.tool == "vegeta"
    raw = sorted(p.name for p in outcome.run_dir.iterdir())
    assert "ramp.summary.json" in raw
    assert "ramp.raw.csv.gz" in raw
    assert any("vegeta" in m for m in messages)


def test_unknown_scenario_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "test", "--scenario", "nope"]) == 2
    assert "scenario 'nope' is unknown" in capsys.readouterr().err


def test_unreachable_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = stack.free_port()
    code = main(
        ["run", "--profile", "test", "--target", f"http://127.0.0.1:{port}", "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"--target http://127.0.0.1:{port} does not answer" in err


def test_bad_target_url_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "test", "--target", "ftp:x", "--out", str(tmp_path)]) == 2
    assert "'ftp:x' is invalid" in capsys.readouterr().err


def test_vegeta_targets_command(tmp_path: Path) -> None:
    from ci.seed import generate_query_log

    log = tmp_path / "querylog.json"
    log.write_text(json.dumps(generate_query_log(seed=1, distinct=20)))
    out = tmp_path / "t.jsonl"
    assert main(["vegeta-targets", "--query-log", str(log), "--out", str(out), "--count", "7"]) == 0
    assert len(out.read_text().splitlines()) == 7
