"""ci.judge.diff: the plain difference of one run against the baseline (recorded results)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ci.errors import MetadataMismatch
from ci.judge.diff import MetricDiff, diff_runs
from ci.results import load_results

RES = Path(__file__).resolve().parents[2] / "resources" / "results"


def test_every_reported_metric_of_every_shared_scenario() -> None:
    base, cand = load_results(RES / "base-1.json"), load_results(RES / "cand-1.json")
    diff = diff_runs(base, cand)
    assert (diff.base.id, diff.candidate.id) == ("base-1", "cand-1")
    assert diff.unmatched == ()
    rows = {(r.scenario, r.metric): r for r in diff.rows}
    p95 = rows["search", "latency_p95"]
    assert p95.base == base.scenario("search").latency_ms.p95
    assert p95.candidate == cand.scenario("search").latency_ms.p95
    assert p95.change == pytest.approx(p95.candidate / p95.base - 1)
    # stream_sse reports no cache: that row is absent, not a row of two n/a
    assert ("search", "cache_hit_ratio") in rows
    assert ("stream_sse", "cache_hit_ratio") not in rows
    assert diff.rows[0].scenario == "search"  # in the candidate's order


def test_change_needs_both_figures_and_a_base_other_than_zero() -> None:
    assert MetricDiff("s", "error_rate", 0.0, 0.01).change is None
    assert MetricDiff("s", "error_rate", 0.0, 0.01).difference == 0.01
    assert MetricDiff("s", "latency_p95", None, 5.0).change is None
    assert MetricDiff("s", "latency_p95", None, 5.0).difference is None
    assert MetricDiff("s", "latency_p95", 4.0, 5.0).change == pytest.approx(0.25)


def test_scenarios_only_one_side_has_are_listed_not_compared() -> None:
    base, cand = load_results(RES / "base-1.json"), load_results(RES / "cand-1.json")
    search_only = msgspec.structs.replace(cand, scenarios=cand.scenarios[:1])
    diff = diff_runs(base, search_only)
    assert diff.unmatched == ("stream_sse",)
    assert {r.scenario for r in diff.rows} == {"search"}


def test_runs_of_different_profiles_are_refused() -> None:
    base, cand = load_results(RES / "base-1.json"), load_results(RES / "cand-1.json")
    smoke = msgspec.structs.replace(cand, run=msgspec.structs.replace(cand.run, profile="smoke"))
    with pytest.raises(MetadataMismatch, match=r"profile 'pr', this run of 'smoke'"):
        diff_runs(base, smoke)
