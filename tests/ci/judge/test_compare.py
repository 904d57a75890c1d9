from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import pytest

import ci.judge.stats
from ci.errors import ComparisonError, MetadataMismatch
from ci.judge.compare import Comparison, MetricComparison, check_metadata, compare_runs
from ci.judge.verdict import exit_code
from ci.results import RunResults
from ci.settings import CompareConfig, MetricSpec

ResultsDictFactory = Callable[..., dict[str, Any]]
RunFactory = Callable[..., RunResults]

P95_ONLY = CompareConfig(metrics=(MetricSpec("latency_p95", "lower"),), bootstrap_resamples=2000)


def _metric(c: Comparison, scenario: str, metric: str) -> MetricComparison:
    for s in c.scenarios:
        for m in s.metrics:
            if s.name == scenario and m.metric == metric:
                return m
    raise AssertionError(f"no {scenario}/{metric} in comparison")


def _draw(
    make_run: RunFactory, rng: np.random.Generator, shift: float, n: int, sigma: float = 0.05
) -> tuple[list[RunResults], list[RunResults]]:
    noise = np.exp(rng.normal(0.0, sigma, size=(2, n)))
    base = [make_run(f"b{i}", latency=float(noise[0, i])) for i in range(n)]
    cand = [make_run(f"c{i}", latency=shift * float(noise[1, i])) for i in range(n)]
    return base, cand


def _simulate(make_run: RunFactory, shift: float, draws: int, seed: int) -> Counter[str]:
    # One scenario is enough: the second would only double the run time.
    config = P95_ONLY
    rng = np.random.default_rng(seed)
    statuses: Counter[str] = Counter()
    one = msgspec.structs.replace
    for i in range(draws):
        base, cand = _draw(make_run, rng, shift, 10)
        base = [one(r, scenarios=r.scenarios[:1]) for r in base]
        cand = [one(r, scenarios=r.scenarios[:1]) for r in cand]
        statuses[compare_runs(base, cand, config, seed=seed + i).status] += 1
    return statuses


def test_aa_noise_does_not_fail(make_run: RunFactory) -> None:
    # A/A at 5 % log-normal noise per run, 10 pairs: the gate's expected false-fail rate is
    # about 0.8 % (measured over 3000 draws); the spec allows at most 1 %.
    statuses = _simulate(make_run, 1.0, 1000, seed=20261127)
    assert statuses["fail"] <= 10, statuses
    assert statuses["error"] == 0, statuses


def test_ten_percent_regression_fails(make_run: RunFactory) -> None:
    # Same noise, candidate 10 % slower: expected detection about 92.5 %; spec >= 90 %.
    statuses = _simulate(make_run, 1.10, 1000, seed=1127)
    assert statuses["fail"] >= 900, statuses


def test_clear_regression_reports_change_interval_and_p(make_run: RunFactory) -> None:
    rng = np.random.default_rng(3)
    base, cand = _draw(make_run, rng, 1.30, 10, sigma=0.02)
    m = _metric(compare_runs(base, cand, P95_ONLY, seed=1), "search", "latency_p95")
    assert m.status == "fail"
    assert m.paired
    assert m.n_base == m.n_candidate == 10
    assert m.change is not None
    assert m.ci_low is not None
    assert m.ci_high is not None
    assert m.ci_low <= m.change <= m.ci_high
    assert 0.25 < m.change < 0.35
    assert m.p_value == pytest.approx(1 / 2**10)


def test_throughput_drop_is_worse_and_rise_is_improved(make_run: RunFactory) -> None:
    config = CompareConfig(metrics=(MetricSpec("throughput_rps", "higher"),))
    rng = np.random.default_rng(5)
    base = [make_run(f"b{i}", throughput=float(np.exp(rng.normal(0, 0.01)))) for i in range(8)]
    worse = [
        make_run(f"w{i}", throughput=0.8 * float(np.exp(rng.normal(0, 0.01)))) for i in range(8)
    ]
    better = [
        make_run(f"g{i}", throughput=1.25 * float(np.exp(rng.normal(0, 0.01)))) for i in range(8)
    ]
    down = _metric(compare_runs(base, worse, config, seed=1), "search", "throughput_rps")
    up = _metric(compare_runs(base, better, config, seed=1), "search", "throughput_rps")
    assert down.status == "fail"
    assert down.change is not None
    assert down.change == pytest.approx(-0.2, abs=0.03)
    assert up.status == "improved"
    assert up.change is not None
    assert up.change == pytest.approx(0.25, abs=0.03)


def test_fewer_pairs_than_min_pairs_is_inconclusive_not_pass(make_run: RunFactory) -> None:
    base = [make_run(f"b{i}") for i in range(4)]
    cand = [make_run(f"c{i}", latency=1.5) for i in range(4)]
    c = compare_runs(base, cand, P95_ONLY, seed=1)
    m = _metric(c, "search", "latency_p95")
    assert m.status == "inconclusive"
    assert m.change == pytest.approx(0.5)  # still reported
    assert m.message is not None
    assert "4 pairs; at least 5 needed" in m.message
    assert c.status == "inconclusive"


def test_one_versus_one_is_unpaired_and_inconclusive(make_run: RunFactory) -> None:
    c = compare_runs([make_run("b")], [make_run("c", latency=1.2)], P95_ONLY, seed=1)
    m = _metric(c, "search", "latency_p95")
    assert not c.paired
    assert m.status == "inconclusive"
    assert m.change == pytest.approx(0.2)
    assert m.ci_low is None
    assert m.p_value is None


def test_unpaired_with_enough_runs_decides(make_run: RunFactory) -> None:
    rng = np.random.default_rng(11)
    base = [make_run(f"b{i}", latency=float(np.exp(rng.normal(0, 0.01)))) for i in range(6)]
    cand = [make_run(f"c{i}", latency=1.3 * float(np.exp(rng.normal(0, 0.01)))) for i in range(7)]
    m = _metric(compare_runs(base, cand, P95_ONLY, seed=1), "search", "latency_p95")
    assert not m.paired
    assert m.status == "fail"
    assert m.p_value is not None
    assert m.p_value < 0.01


def test_identical_runs_pass_with_p_one(make_run: RunFactory) -> None:
    runs = [make_run(f"r{i}") for i in range(6)]
    c = compare_runs(runs, runs, CompareConfig(), seed=1)
    assert c.status == "pass"
    assert {m.status for m in c.metrics} == {"pass"}
    assert all(m.p_value == 1.0 for m in c.metrics)
    assert all(m.change == 0.0 for m in c.metrics)


def test_error_rate_with_zero_base_uses_absolute_difference(make_run: RunFactory) -> None:
    config = CompareConfig(metrics=(MetricSpec("error_rate", "lower", "absolute", 0.001, 0.0005),))
    base = [make_run(f"b{i}", error_rate=0.0) for i in range(6)]
    same = [make_run(f"s{i}", error_rate=0.0) for i in range(6)]
    worse = [make_run(f"w{i}", error_rate=0.01 + i * 0.001) for i in range(6)]
    unchanged = _metric(compare_runs(base, same, config, seed=1), "search", "error_rate")
    assert unchanged.status == "pass"
    assert unchanged.change == 0.0
    assert unchanged.p_value == 1.0
    m = _metric(compare_runs(base, worse, config, seed=1), "search", "error_rate")
    assert m.status == "fail"
    assert m.change == pytest.approx(0.0125)


def test_zero_throughput_ratio_is_an_error_not_a_verdict(make_run: RunFactory) -> None:
    config = CompareConfig(metrics=(MetricSpec("throughput_rps", "higher"),))
    base = [make_run(f"b{i}") for i in range(5)]
    cand = [make_run(f"c{i}", throughput=0.0) for i in range(5)]
    c = compare_runs(base, cand, config, seed=1)
    m = _metric(c, "search", "throughput_rps")
    assert m.status == "error"
    assert m.message is not None
    assert "candidate value 0.0 of throughput_rps is not positive" in m.message
    assert c.status == "error"
    assert exit_code(c.status) == 2


def test_exception_in_statistics_is_error_never_pass(
    make_run: RunFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(effects: Any) -> float:
        raise FloatingPointError("injected failure")

    monkeypatch.setattr(ci.judge.stats, "wilcoxon_p", broken)
    runs = [make_run(f"r{i}") for i in range(6)]
    cand = [make_run(f"c{i}", latency=1.01) for i in range(6)]
    c = compare_runs(runs, cand, P95_ONLY, seed=1)
    m = _metric(c, "search", "latency_p95")
    assert m.status == "error"
    assert m.message == "statistics failed: FloatingPointError: injected failure"
    assert m.p_value is None
    assert m.change is None
    assert c.status == "error"
    assert exit_code(c.status) != 0


def test_metadata_mismatch_names_what_differs(
    results_dict: ResultsDictFactory,
) -> None:
    base = [RunResults.from_dict(results_dict("b", profile="pr"))]
    cand = [RunResults.from_dict(results_dict("c", profile="smoke"))]
    with pytest.raises(MetadataMismatch, match="profile differs: base 'pr', candidate 'smoke'"):
        compare_runs(base, cand, CompareConfig())
    other = [RunResults.from_dict(results_dict("c", scenarios=("search",), corpus_hash="x"))]
    with pytest.raises(MetadataMismatch) as info:
        check_metadata(base, other)
    assert "scenario set differs: base ['search', 'stream'], candidate ['search']" in str(
        info.value
    )
    assert "corpus differs" in str(info.value)
    assert "'x'" in str(info.value)
    machine = [RunResults.from_dict(results_dict("m", machine_class="4cpu"))]
    with pytest.raises(MetadataMismatch, match="machine class differs"):
        check_metadata(base, machine)
    mixed = [*base, RunResults.from_dict(results_dict("b2", profile="full"))]
    with pytest.raises(MetadataMismatch, match="profile differs within base runs"):
        check_metadata(mixed, mixed)
    with pytest.raises(ComparisonError, match="no candidate runs"):
        check_metadata(base, [])


def test_metric_missing_everywhere_is_skipped(make_run: RunFactory) -> None:
    c = compare_runs(
        [make_run(f"b{i}") for i in range(5)],
        [make_run(f"c{i}") for i in range(5)],
        CompareConfig(),
    )
    assert "cache_hit_ratio" in {m.metric for m in c.scenarios[0].metrics}
    assert "cache_hit_ratio" not in {m.metric for m in c.scenarios[1].metrics}


def test_warn_needs_significance_not_just_a_large_noisy_estimate(make_run: RunFactory) -> None:
    """Identical revisions on a noisy scenario (calibration: spike p50 +189 % A/A) pass;
    a small change seen in every pair warns."""
    base = [make_run(f"b{i}", latency=1.0) for i in range(5)]
    noisy = [make_run(f"c{i}", latency=f) for i, f in enumerate([1.9, 0.8, 1.6, 0.7, 1.4])]
    m = _metric(compare_runs(base, noisy, P95_ONLY, seed=3), "search", "latency_p95")
    assert m.change is not None
    assert m.change > 0.05  # beyond the fail threshold...
    assert m.p_value is not None
    assert m.p_value > 0.05  # ...but 2 of 5 pairs went the other way
    assert m.status == "pass"
    steady = [make_run(f"s{i}", latency=f) for i, f in enumerate([1.03, 1.04, 1.035, 1.03, 1.04])]
    w = _metric(compare_runs(base, steady, P95_ONLY, seed=3), "search", "latency_p95")
    assert w.p_value is not None
    assert w.p_value < 0.05
    assert w.status == "warn"


def test_the_bootstrap_is_always_seeded_and_rejudging_repeats(make_run: RunFactory) -> None:
    rng = np.random.default_rng(42)
    base, cand = _draw(make_run, rng, 1.04, 6, sigma=0.08)
    first = compare_runs(base, cand, P95_ONLY)  # no seed given
    again = compare_runs(base, cand, P95_ONLY)
    assert first.seed == again.seed == 0  # recorded, so the report can show it
    assert first == again  # the same intervals, statuses and verdict
    other = compare_runs(base, cand, P95_ONLY, seed=7)
    assert other.seed == 7
    m0, m7 = _metric(first, "search", "latency_p95"), _metric(other, "search", "latency_p95")
    assert (m0.ci_low, m0.ci_high) != (m7.ci_low, m7.ci_high)  # the seed is what fixes them
