"""ci.collect: exact percentiles, per-second series, cache deltas, scenario models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ci.measure import collect, k6, vegeta
from ci.results import (
    Corpus,
    Machine,
    Resources,
    RunMeta,
    RunResults,
    Tools,
    dump_results,
    load_results,
)
from ci.settings import repo_sla

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def test_latency_summary_is_exact() -> None:
    values = [float(v) for v in range(1, 1001)]
    s = collect.latency_summary(values)
    assert s is not None
    assert s.p50 == pytest.approx(500.5)
    assert s.p90 == pytest.approx(900.1)
    assert s.p99 == pytest.approx(990.01)
    assert s.p999 == pytest.approx(999.001)
    assert (s.minimum, s.maximum, s.mean) == (1.0, 1000.0, 500.5)
    assert collect.latency_summary([]) is None


def test_timeseries_bins_by_second() -> None:
    durations = [(100.2, 1.0), (100.7, 3.0), (102.1, 10.0)]
    failures = [(100.2, False), (100.7, True), (102.1, True)]
    points = collect.timeseries(durations, failures)
    assert [p.t for p in points] == [0.0, 1.0, 2.0]
    assert [p.rps for p in points] == [2.0, 0.0, 1.0]
    assert [p.errors for p in points] == [1, 0, 1]
    assert points[0].p50_ms == pytest.approx(2.0)
    assert points[2].p99_ms == pytest.approx(10.0)


def test_cache_figures_without_a_cache() -> None:
    fig = collect.cache_figures({"db_searches": 10.0}, {"db_searches": 25.0})
    assert fig.db_searches == 15
    assert fig.hit_ratio is None
    assert (fig.hits, fig.misses, fig.coalesced) == (0, 0, 0)


def test_cache_figures_from_cache_sources() -> None:
    # the shape of the service's /v1/stats "cache" object (per-level counters)
    def stats(l1: float, redis: float, computed: float, coalesced: float) -> dict[str, object]:
        return {
            "db_searches": computed,
            "cache": {
                "hits": {"l1": l1, "redis": redis},
                "misses": {"l1": redis + computed, "redis": computed},
                "sources": {"l1": l1, "redis": redis, "computed": computed, "bypass": 0.0},
                "hit_ratio": 0.5,
                "coalesced": coalesced,
            },
        }

    fig = collect.cache_figures(stats(10, 5, 5, 1), stats(70, 15, 15, 4))
    assert (fig.hits, fig.misses, fig.coalesced, fig.db_searches) == (70, 10, 3, 10)
    assert fig.hit_ratio == pytest.approx(70 / 80)


def test_cache_figures_with_plain_counters() -> None:
    before = {"db_searches": 0, "cache": {"hits": 0, "misses": 0, "coalesced": 0}}
    after = {"db_searches": 4, "cache": {"hits": 6, "misses": 4, "coalesced": 2}}
    fig = collect.cache_figures(before, after)
    assert fig.hit_ratio == pytest.approx(0.6)


def _meta(profile: str = "test") -> RunMeta:
    return RunMeta(
        id="r1",
        created_at="2026-11-27T18:00:00+00:00",
        git_commit=None,
        git_ref=None,
        profile=profile,
        machine=Machine("local-2cpu", 2, 24.0, "Linux", "3.11.7"),
        tools=Tools(k6="v1.1.0", vegeta=None),
        settings={"time_scale": 0.005},
        corpus=Corpus(5000, 42, "hash", "abc"),
        target="http://127.0.0.1:8000",
    )


def test_k6_scenario_from_recorded_outputs_round_trips(tmp_path: Path) -> None:
    summary = k6.parse_summary(json.loads((RESOURCES / "k6" / "ramp.summary.json").read_text()))
    raw = k6.read_raw_csv(RESOURCES / "k6" / "ramp.raw.csv.gz")
    scenario = collect.scenario_from_k6(
        "ramp",
        summary,
        raw,
        started_at="2026-11-27T18:00:00+00:00",
        label=None,
        cache=collect.cache_figures({"db_searches": 1}, {"db_searches": 169}),
        database=None,
        resources=Resources((), None),
    )
    assert scenario.requests == 172
    assert scenario.error_rate == pytest.approx(4 / 172)
    durations = np.array([v for _, v in raw.durations])
    assert scenario.latency_ms.p99 == pytest.approx(np.percentile(durations, 99), abs=1e-3)
    # exact from the raw samples, and k6's own (exact) p95 agrees
    assert summary.latency_ms is not None
    assert scenario.latency_ms.p95 == pytest.approx(summary.latency_ms.p95, rel=1e-3)
    assert sum(p.rps for p in scenario.timeseries) == 172
    assert sum(p.errors for p in scenario.timeseries) == 4
    assert [t.ok for t in scenario.thresholds].count(False) == 1
    path = tmp_path / "results.json"
    dump_results(RunResults(run=_meta(), scenarios=(scenario,)), path)
    assert load_results(path).scenario("ramp").latency_ms == scenario.latency_ms


def test_vegeta_scenario_applies_the_sla(tmp_path: Path) -> None:
    hits = vegeta.parse_encoded((RESOURCES / "vegeta" / "results.jsonl").read_text().splitlines())
    scenario = collect.scenario_from_vegeta(
        "vegeta",
        hits,
        started_at="2026-11-27T18:00:00+00:00",
        cache=None,
        database=None,
        resources=Resources((), None),
        sla=repo_sla(),
    )
    assert scenario.tool == "vegeta"
    assert scenario.requests == 20
    assert scenario.error_rate == pytest.approx(0.05)
    assert scenario.latency_ms.maximum == pytest.approx(40.0)
    outcomes = {t.expression: t.ok for t in scenario.thresholds}
    assert outcomes == {"p(95)<2000": True, "p(99)<5000": True, "rate<0.001": False}
    dump_results(RunResults(run=_meta(), scenarios=(scenario,)), tmp_path / "r.json")
    assert load_results(tmp_path / "r.json").scenario("vegeta").requests == 20


def test_latency_histogram_counts_every_sample_in_log_bins() -> None:
    values = [0.005, 1.0, 1.2, 9.99, 10.0, 250.0]
    hist = collect.latency_histogram(values)
    assert hist is not None
    assert sum(hist.counts) == len(values)
    assert len(hist.edges_ms) == len(hist.counts) + 1
    assert hist.edges_ms[0] == 0.01  # the floor bin holds the 0.005 ms sample
    assert hist.counts[0] == 1
    for v in values[1:]:  # each sample sits in the bin whose edges bracket it
        i = max(j for j, e in enumerate(hist.edges_ms[:-1]) if e <= v)
        assert hist.edges_ms[i] <= v < hist.edges_ms[i + 1]
        assert hist.counts[i] >= 1
    ten = hist.edges_ms.index(10.0)
    assert hist.counts[ten] == 1
    assert hist.counts[ten - 1] == 1
    assert collect.latency_histogram([]) is None
