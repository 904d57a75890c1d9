from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ci.judge.compare import compare_runs, overall_status
from ci.judge.sla import check_sla
from ci.judge.verdict import Verdict, exit_code, judge_runs, verdict
from ci.results import RunResults
from ci.settings import CompareConfig, MetricSpec, PerfConfig, repo_sla

RunFactory = Callable[..., RunResults]
SLA = repo_sla()
P95_ONLY = CompareConfig(metrics=(MetricSpec("latency_p95", "lower"),), bootstrap_resamples=2000)


def test_overall_status_precedence_and_exit_codes(make_run: RunFactory) -> None:
    runs = [make_run(f"r{i}") for i in range(5)]
    c = compare_runs(runs, runs, P95_ONLY, seed=1)
    m = c.metrics[0]
    as_ = dataclasses.replace
    assert overall_status([as_(m, status="warn"), as_(m, status="inconclusive")], ()) == "warn"
    assert overall_status([as_(m, status="inconclusive"), m], ()) == "inconclusive"
    assert overall_status([as_(m, status="error"), as_(m, status="warn")], ()) == "error"
    assert overall_status([as_(m, status="fail"), as_(m, status="error")], ()) == "fail"
    assert overall_status([as_(m, status="improved"), m], ()) == "pass"
    sla_fail = check_sla([make_run("x", latency=30.0)], SLA)
    assert overall_status([m], sla_fail) == "fail"
    v = verdict(c, sla_fail)
    assert (v.status, v.regressions, v.sla_failures) == ("fail", 0, 4)
    assert [
        exit_code(s) for s in ("pass", "improved", "warn", "inconclusive", "fail", "error")
    ] == [
        0,
        0,
        0,
        0,
        1,
        2,
    ]


def test_verdict_words_headline_and_exit_code() -> None:
    v = Verdict("fail", regressions=2, warnings=1, improvements=1, inconclusive=3, errors=1,
                sla_failures=1)  # fmt: skip
    assert v.detail == (
        "2 regressions, 1 SLA failure, 1 statistics error, 1 warning, 3 inconclusive, 1 improvement"
    )
    assert v.headline == "Performance: FAIL \u2014 " + v.detail
    assert v.exit_code == 1
    calm = Verdict("pass", 0, 0, 0, 0, 0, 0)
    assert calm.headline == "Performance: PASS \u2014 no significant change"
    assert calm.exit_code == 0
    assert Verdict("error", 0, 0, 0, 0, 1, 0).exit_code == 2


def test_judge_runs_bundles_comparison_sla_and_verdict(make_run: RunFactory) -> None:
    base = [make_run(f"b{i}") for i in range(5)]
    cand = [make_run(f"c{i}", latency=30.0) for i in range(5)]
    config = PerfConfig(compare=P95_ONLY)
    j = judge_runs(base, cand, config, seed=1)
    assert j.comparison == compare_runs(base, cand, P95_ONLY, seed=1)
    assert j.sla == tuple(check_sla(cand, SLA))
    assert j.verdict == verdict(j.comparison, j.sla)
    assert j.verdict.status == "fail"
    assert (j.headline, j.exit_code) == (j.verdict.headline, 1)
    assert j.base == tuple(base)
    assert j.candidate == tuple(cand)
