"""Judging duet windows: effects per metric, tail samples, report-only changes, exact intervals."""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np
import pytest

from ci.errors import ComparisonError
from ci.judge.duet import _ABSOLUTE_REPORT, ReportMetric, hl_interval, judge_duet
from ci.results.duet import DuetRun, SideSetup, Timing
from ci.settings.gate import ABSOLUTE_METRICS, GateMetric, GateRule
from tests.ci.judge.duet_factory import drawn_run, duet_run, side

CONFIG = GateRule()


def test_an_unchanged_revision_passes_at_the_first_look() -> None:
    j = judge_duet(drawn_run(12, sd=0.04, seed=3), CONFIG)
    assert j.decision == "pass"
    assert [look.pairs for look in j.looks] == [12]
    assert {m.name for m in j.gated} == {m.name for m in CONFIG.metrics}
    assert j.windows == 12


def test_a_cpu_regression_fails_and_names_the_metric() -> None:
    j = judge_duet(drawn_run(12, sd=0.01, cpu_effect=0.10, seed=4), CONFIG)
    assert j.decision == "fail"
    assert j.reasons == ("cpu_ms_per_request",)
    (cpu,) = (m for m in j.primary_report if m.name == "cpu_ms_per_request")
    assert cpu.change == pytest.approx(0.10, abs=0.01)
    assert cpu.ci_low < 0.10 < cpu.ci_high


def test_too_few_samples_above_a_percentile_make_it_report_only() -> None:
    run = drawn_run(12, samples=500, seed=5)  # 50 above p90, fewer than 60
    j = judge_duet(run, CONFIG)
    assert [d.name for d in j.demoted] == ["latency_p90"]
    assert "50 samples above p90" in j.demoted[0].reason
    assert "latency_p90" not in {m.name for m in j.gated}
    assert "latency_p90" in {r.name for r in j.report_only}
    p99 = next(r for r in j.report_only if r.name == "latency_p99")
    assert p99.note is not None
    assert "indicative only" in p99.note


def test_report_only_change_needs_p_and_size() -> None:
    # p95 follows p90 in the factory (p95 = 1.2 * p90): a +20 % p90 shift moves p95 too
    config = GateRule(metrics=(GateMetric("cpu_ms_per_request", "lower", 0.05),), looks=(12,))
    j = judge_duet(drawn_run(12, sd=0.01, p90_effect=0.20, seed=6), config)
    changed = {r.name for r in j.report_only if r.changed}
    assert {"latency_p90", "latency_p95", "latency_p99"} <= changed
    assert "latency_p50" not in changed
    assert j.decision == "pass"  # report-only metrics never gate


def test_a_window_without_a_primary_value_is_an_error_not_a_verdict() -> None:
    good = (side(), side())
    broken = (side(), side(samples=0))
    run = duet_run([good] * 11 + [broken])
    with pytest.raises(ComparisonError, match=r"no primary metric can be gated|no value"):
        judge_duet(run, GateRule(metrics=(GateMetric("latency_p50", "lower", 0.1),)))


def test_a_candidate_that_fails_every_request_fails_on_errors() -> None:
    pairs = [(side(), side(samples=100, failed=1000)) for _ in range(12)]
    j = judge_duet(duet_run(pairs), CONFIG)
    assert j.decision == "fail"
    assert "error_rate" in j.reasons


def test_judging_twice_gives_the_same_judgement() -> None:
    run = drawn_run(24, sd=0.08, seed=7)
    assert judge_duet(run, CONFIG) == judge_duet(run, CONFIG)


@pytest.mark.parametrize("n", [6, 9, 12])
def test_hl_interval_is_the_exact_walsh_interval(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(0.05, 0.1, n)
    lo, hi = hl_interval(x, 0.95)
    walsh = np.sort([(x[i] + x[j]) / 2 for i in range(n) for j in range(i, n)])
    m = walsh.size
    # the null distribution of T+ by brute force over all 2**n sign patterns
    signs = np.array(list(itertools.product([0, 1], repeat=n)))
    t_plus = (signs * np.arange(1, n + 1)).sum(axis=1)
    cdf = np.array([(t_plus <= w).mean() for w in range(m + 1)])
    k = max(c for c in range(1, m // 2 + 1) if cdf[c - 1] <= 0.025)
    assert lo == pytest.approx(walsh[k - 1])
    assert hi == pytest.approx(walsh[m - k])
    assert lo <= float(np.median(walsh)) <= hi
    assert not math.isnan(lo)


def test_hl_interval_with_too_few_pairs_is_the_full_range() -> None:
    lo, hi = hl_interval(np.array([0.1, -0.2, 0.3]), 0.95)
    assert (lo, hi) == (-0.2, 0.3)


@pytest.mark.parametrize("seed", range(5))
def test_a_leak_of_a_few_kb_per_request_fails_on_memory(seed: int) -> None:
    j = judge_duet(drawn_run(12, sd=0.03, leak_kb_per_request=8.0, seed=seed), CONFIG)
    assert j.decision == "fail"
    assert j.reasons == ("rss_kb_per_1k_requests",)


def _restarted_every_block(run: DuetRun, settling_kb: float) -> DuetRun:
    """``run`` with each measured block's first window marked restarted, and the
    candidate's RSS in it ``settling_kb`` higher (a new process settling)."""
    windows = []
    for w in run.windows:
        if not w.warmup and w.index % 4 == 0:
            grown = (w.candidate.rss_end_mb or 0.0) + settling_kb / 1024
            cand = msgspec.structs.replace(w.candidate, rss_end_mb=grown)
            w = msgspec.structs.replace(w, restarted=True, candidate=cand)
        windows.append(w)
    return msgspec.structs.replace(run, windows=tuple(windows))


def test_rss_growth_leaves_out_each_restarted_pairs_first_window() -> None:
    run = _restarted_every_block(drawn_run(20, sd=0.03, seed=11), settling_kb=40_000.0)
    j = judge_duet(run, CONFIG)
    rss = next(m for m in j.looks[-1].metrics if m.name == "rss_kb_per_1k_requests")
    cpu = next(m for m in j.looks[-1].metrics if m.name == "cpu_ms_per_request")
    assert (rss.pairs, cpu.pairs) == (9, 12)  # 3 blocks of 4, each one's first left out
    assert j.decision == "pass"
    row = next(r for r in j.primary_report if r.name == "rss_kb_per_1k_requests")
    assert row.pairs == 15
    assert row.ci_high < 5000
    # the same windows unmarked: the settling reads as growth and the run cannot pass
    unmarked = msgspec.structs.replace(
        run, windows=tuple(msgspec.structs.replace(w, restarted=False) for w in run.windows)
    )
    assert judge_duet(unmarked, CONFIG).decision != "pass"


def test_a_leak_fails_at_the_second_look_on_the_windows_it_keeps() -> None:
    run = _restarted_every_block(
        drawn_run(20, sd=0.03, leak_kb_per_request=20.0, seed=12), settling_kb=0.0
    )
    j = judge_duet(run, CONFIG)
    assert [look.decision for look in j.looks] == ["continue", "fail"]
    assert j.reasons == ("rss_kb_per_1k_requests",)


@pytest.mark.parametrize("seed", range(5))
def test_two_percent_of_searches_stalling_fails_on_the_tail(seed: int) -> None:
    j = judge_duet(drawn_run(12, sd=0.03, slow_effect=0.03, seed=seed), CONFIG)
    assert j.decision == "fail"
    assert j.reasons == ("slow_lead",)


@pytest.mark.parametrize("seed", range(5))
def test_the_memory_and_tail_metrics_stay_quiet_a_a(seed: int) -> None:
    j = judge_duet(drawn_run(12, sd=0.03, seed=100 + seed), CONFIG)
    assert j.decision == "pass"
    assert {m.name for m in j.gated} >= {"slow_lead", "rss_kb_per_1k_requests"}


def test_a_prior_keeps_sparse_one_sided_lags_from_failing_and_still_fails_a_stall() -> None:
    # a quiet machine: the candidate lags once or twice in most windows, the base never
    # (a process offset, no regression)
    sparse = [(side(slow=0), side(slow=[1, 2, 0, 1][i % 4])) for i in range(20)]
    rule = GateRule(metrics=(GateMetric("slow_lead", "lower", 0.15, "absolute"),), tail_prior=0.0)
    bare = judge_duet(duet_run(sparse), rule)
    assert bare.decision == "fail"  # each such window reads the largest lead, +1
    prior = msgspec.structs.replace(rule, tail_prior=10.0)
    assert judge_duet(duet_run(sparse), prior).decision == "pass"
    # 2 % of 600 searches stall (12 a window) beside the machine's lags on both sides
    stall = [(side(slow=[1, 0, 2][i % 3]), side(slow=12 + [0, 1, 2][i % 3])) for i in range(20)]
    j = judge_duet(duet_run(stall), prior)
    assert j.decision == "fail"
    assert j.reasons == ("slow_lead",)


def test_a_run_without_rss_or_slow_counts_reports_them_as_not_measured() -> None:
    bare = side(slow=None, rss_growth_kb=None, burst_ms=60.0)
    pairs = [(bare, bare)] * 12
    j = judge_duet(duet_run(pairs), CONFIG)
    assert {d.name for d in j.demoted} == {"slow_lead", "rss_kb_per_1k_requests"}
    assert all("not measured" in d.reason for d in j.demoted)
    assert j.decision == "pass"


def test_each_sides_data_layer_is_reported_and_flagged_beyond_half_again() -> None:
    run = drawn_run(12, seed=7)

    def with_setup(base_index_s: float, cand_index_s: float) -> dict[str, ReportMetric]:
        setup = {
            "base": SideSetup("documents_hnsw_vector_m16_efc64", 0.1, 0.4, base_index_s, 9.0),
            "candidate": SideSetup(
                "documents_hnsw_vector_m32_efc128", 0.1, 0.4, cand_index_s, 9.0 + cand_index_s
            ),
        }
        j = judge_duet(msgspec.structs.replace(run, setup=setup), CONFIG)
        return {r.name: r for r in j.report_only if r.name in ("index_build_s", "time_to_ready_s")}

    same = with_setup(3.4, 3.5)
    assert not same["index_build_s"].changed
    assert same["index_build_s"].change == pytest.approx(0.1 / 3.4)
    slower = with_setup(3.4, 8.0)
    assert slower["index_build_s"].changed
    assert slower["index_build_s"].note is not None
    assert "m32_efc128" in slower["index_build_s"].note
    assert not with_setup(0.1, 0.3)["index_build_s"].changed  # tripled, but 0.2 s
    assert not {r.name for r in judge_duet(run, CONFIG).report_only} & {"index_build_s"}


def test_streams_slower_to_their_last_event_fail_on_stream_last_p50() -> None:
    j = judge_duet(drawn_run(12, sd=0.02, stream_sd=0.10, stream_effect=0.5, seed=6), CONFIG)
    assert j.decision == "fail"
    assert j.reasons == ("stream_last_p50",)


def test_one_more_valkey_round_trip_per_search_fails_on_valkey_commands() -> None:
    j = judge_duet(drawn_run(12, sd=0.02, valkey_effect=0.95, seed=7), CONFIG)
    assert j.decision == "fail"
    assert j.reasons == ("valkey_calls_per_request",)
    within = judge_duet(drawn_run(12, sd=0.02, valkey_effect=0.2, seed=7), CONFIG)
    assert within.decision == "pass"  # one more command for every fifth request


def test_a_candidate_without_valkey_commands_is_judged_as_a_difference() -> None:
    pairs = [(side(), side(valkey_per_request=0.0)) for _ in range(12)]
    j = judge_duet(duet_run(pairs), CONFIG)  # a cache switched off reads 0, not a crash
    [calls] = [m for m in j.looks[-1].metrics if m.name == "valkey_calls_per_request"]
    assert calls.estimate == pytest.approx(-3.6, abs=0.01)
    assert not calls.failed


def test_a_ratio_metric_that_reads_0_is_demoted_not_a_crash() -> None:
    ratio = GateMetric("valkey_calls_per_request", "lower", 0.1)  # a team's own choice
    rule = msgspec.structs.replace(CONFIG, metrics=(*CONFIG.metrics[:-1], ratio))
    pairs = [(side(), side(valkey_per_request=0.0)) for _ in range(12)]
    j = judge_duet(duet_run(pairs), rule)
    reasons = {d.name: d.reason for d in j.demoted}  # (no burst in these windows either)
    assert "ratio cannot compare" in reasons["valkey_calls_per_request"]
    [shown] = [r for r in j.report_only if r.name == "valkey_calls_per_request"]
    assert shown.change == pytest.approx(-3.6, abs=0.01)  # shown as a difference


def test_every_metric_compared_as_a_difference_has_a_report_threshold() -> None:
    assert set(_ABSOLUTE_REPORT) == set(ABSOLUTE_METRICS)


def _burst(p50: float) -> Timing:
    return Timing(150, p50, p50 * 1.5, p50 * 1.8, p50 * 2.5)


def _with_bursts(run: DuetRun, base_ms: float, candidate_ms: float) -> DuetRun:
    noise = np.random.default_rng(8).normal(0.0, 0.1, len(run.windows))
    return msgspec.structs.replace(
        run,
        windows=tuple(
            msgspec.structs.replace(
                w,
                base=msgspec.structs.replace(w.base, burst_ms=_burst(base_ms)),
                candidate=msgspec.structs.replace(
                    w.candidate, burst_ms=_burst(candidate_ms * math.exp(e))
                ),
            )
            for w, e in zip(run.windows, noise, strict=True)
        ),
    )


def test_the_default_rule_gates_burst_latency_p50() -> None:
    assert "burst_latency_p50" in CONFIG.primary_names
    run = drawn_run(12, sd=0.02, seed=9)
    slower = judge_duet(_with_bursts(run, 40.0, 80.0), CONFIG)  # a pool too small for the burst
    assert "burst_latency_p50" in {m.name for m in slower.gated}
    assert (slower.decision, slower.reasons) == ("fail", ("burst_latency_p50",))
    assert judge_duet(_with_bursts(run, 40.0, 40.0), CONFIG).decision == "pass"
    # a rule that leaves it out reports it, and shows it as changed
    without = msgspec.structs.replace(
        CONFIG, metrics=tuple(m for m in CONFIG.metrics if m.name != "burst_latency_p50")
    )
    report = {r.name: r for r in judge_duet(_with_bursts(run, 40.0, 80.0), without).report_only}
    assert report["burst_latency_p50"].changed


def test_a_run_without_streams_gates_the_rest_and_says_why() -> None:
    run = drawn_run(12, sd=0.02, seed=7)
    quiet = msgspec.structs.replace(
        run,
        windows=tuple(
            msgspec.structs.replace(
                w,
                base=msgspec.structs.replace(w.base, stream_ms=None),
                candidate=msgspec.structs.replace(w.candidate, stream_ms=None),
            )
            for w in run.windows
        ),
    )
    j = judge_duet(quiet, CONFIG)
    assert "stream_last_p50" not in {m.name for m in j.gated}
    assert [d.name for d in j.demoted] == ["stream_last_p50"]
    assert j.decision == "pass"
