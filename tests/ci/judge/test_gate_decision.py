"""The gate's final decision: the windows' rule, then the SLA against the base."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import msgspec
import pytest

from ci.errors import ComparisonError, ResultsError
from ci.judge.gate_decision import judge
from ci.judge.gate_verdict import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    DependencyChange,
    dump_verdict,
    load_verdict,
)
from ci.settings.gate import Policy
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import RULE, sla_row, verdict


def test_an_unchanged_revision_passes() -> None:
    j = verdict().judgement
    assert (j.decision, j.statistical_decision, j.conclusion) == ("pass", "pass", "success")
    assert verdict().exit_code == EXIT_PASS
    assert j.reasons[0].startswith("every primary metric (cpu_ms_per_request, latency_p50")
    assert j.pairs == 12
    assert [m.name for m in j.looks[-1].metrics] == [
        "cpu_ms_per_request", "latency_p50", "latency_p90", "error_rate", "slow_lead",
        "rss_kb_per_1k_requests", "stream_last_p50", "burst_latency_p50",
        "valkey_calls_per_request",
    ]  # fmt: skip
    assert j.primary[0].base_median > 0


def test_a_regression_fails_with_a_reason_naming_it() -> None:
    v = verdict(drawn_run(12, sd=0.01, cpu_effect=0.12, seed=2))
    j = v.judgement
    assert (j.decision, j.conclusion, v.exit_code) == ("fail", "failure", EXIT_FAIL)
    assert re.match(r"cpu_ms_per_request \+1[12]\.\d % over 12 windows", j.reasons[0])
    assert "beyond its +5.0 % fail threshold" in j.reasons[0]


def test_an_sla_only_the_candidate_breaks_fails_the_pr() -> None:
    v = verdict(sla=[sla_row("pass", "p95_ms"), sla_row("fail")])
    j = v.judgement
    assert j.statistical_decision == "pass"
    assert (j.decision, j.conclusion) == ("fail", "failure")
    assert any("the candidate breaches it" in r for r in j.reasons)
    assert [s.status for s in v.sla] == ["pass", "fail"]


def test_an_sla_both_sides_breach_does_not_block() -> None:
    j = verdict(sla=[sla_row("pre-existing")]).judgement
    assert j.decision == "pass"
    assert any("shared with the base: pre-existing, not blocking" in r for r in j.reasons)


def test_undecided_windows_are_inconclusive_never_a_pass() -> None:
    run = drawn_run(36, sd=0.01, cpu_effect=math.log(1.05) - 0.0005, seed=4)
    v = verdict(run, stopped="last look")
    j = v.judgement
    assert j.statistical_decision in ("inconclusive", "fail")
    if j.statistical_decision == "inconclusive":
        assert (j.decision, j.conclusion, v.exit_code) == (
            "inconclusive", "neutral", EXIT_INCONCLUSIVE,
        )  # fmt: skip
        assert "windows ran out" in j.reasons[0]


def test_a_budget_that_ran_out_before_the_first_look_is_inconclusive() -> None:
    j = verdict(drawn_run(5), stopped="time budget").judgement
    assert (j.decision, j.conclusion) == ("inconclusive", "neutral")
    assert j.looks == ()
    assert j.reasons[0] == (
        "no look reached: 5 measured windows, the first look needs 12 (time budget)"
    )


def test_a_pass_of_a_harness_change_is_neutral_and_said() -> None:
    v = verdict(changed=("ci/judge/gate.py", "perf.toml"))
    assert v.harness.changed
    assert (v.judgement.decision, v.judgement.conclusion) == ("pass", "neutral")
    assert v.judgement.reasons[-2:] == (
        "this pull request changes the harness (ci/judge/gate.py, perf.toml): "
        "the base's harness measured both sides",
        "policy gate.harness_changed = 'neutral': a pass of a harness change ends the check "
        "as neutral",
    )


@pytest.mark.parametrize("policy", ["neutral", "failure"])
def test_the_policies_set_the_conclusion_of_dont_know(policy: Policy) -> None:
    strict = msgspec.structs.replace(RULE, inconclusive=policy, harness_changed=policy)
    undecided = verdict(drawn_run(5), rule=strict, stopped="time budget").judgement
    assert (undecided.decision, undecided.conclusion) == ("inconclusive", policy)
    assert undecided.reasons[-1] == (
        f"policy gate.inconclusive = {policy!r}: an undecided verdict ends the check as {policy}"
    )
    changed = verdict(rule=strict, changed=("ci/x.py",)).judgement
    assert (changed.decision, changed.conclusion) == ("pass", policy)
    assert f"gate.harness_changed = {policy!r}" in changed.reasons[-1]
    # a clean pass and a fail are never touched by a policy
    assert verdict(rule=strict).judgement.conclusion == "success"
    failed = verdict(drawn_run(36, cpu_effect=0.25), rule=strict).judgement
    assert failed.conclusion == "failure"
    assert not any(r.startswith("policy") for r in failed.reasons)


def test_the_verdict_file_round_trips_and_refuses_others(tmp_path: Path) -> None:
    v = verdict(sla=[sla_row("pre-existing")], changed=("ci/x.py",))
    path = tmp_path / "verdict.json"
    dump_verdict(v, path)
    assert load_verdict(path) == v
    text = path.read_text()
    path.write_text(text.replace('"kind": "perfci-gate-verdict"', '"kind": "other"'))
    with pytest.raises(ResultsError, match="not a gate verdict"):
        load_verdict(path)
    path.write_text(text.replace('"version": 2', '"version": 7'))
    with pytest.raises(ResultsError, match="version 7"):
        load_verdict(path)


def test_a_verdict_from_before_the_tail_prior_is_read_with_none(tmp_path: Path) -> None:
    v = verdict()
    assert v.rule.tail_prior == 10.0
    path = tmp_path / "verdict.json"
    dump_verdict(v, path)
    data = json.loads(path.read_text())
    del data["rule"]["tail_prior"]
    path.write_text(json.dumps(data))
    assert load_verdict(path).rule.tail_prior == 0.0  # it was judged without one


def test_judging_the_same_windows_again_gives_the_same_verdict() -> None:
    run = drawn_run(24, sd=0.07, seed=9)
    first, again = verdict(run), verdict(run)
    assert first.judgement == again.judgement


def test_a_verdict_with_a_bad_rule_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "verdict.json"
    dump_verdict(verdict(), path)
    path.write_text(path.read_text().replace('"alpha": 0.01', '"alpha": 0.9'))
    with pytest.raises(ResultsError, match=r"gate\.alpha = 0\.9"):
        load_verdict(path)


def test_a_failed_candidate_fails_over_any_windows_and_says_why() -> None:
    empty = msgspec.structs.replace(drawn_run(1), windows=())
    j = judge(empty, RULE, stopped="candidate failed", failure="its service exited")
    assert (j.decision, j.conclusion, j.statistical_decision) == ("fail", "failure", "continue")
    assert j.reasons == ("the candidate failed: its service exited",)
    # windows that already decided keep their decision and reasons
    decided = judge(drawn_run(36, cpu_effect=0.25), RULE, failure="warm-up search failed")
    assert decided.statistical_decision == "fail"
    assert decided.reasons[0] == "the candidate failed: warm-up search failed"
    assert decided.reasons[1].startswith("cpu_ms_per_request +")
    # a pass of the windows does not outweigh it
    passed = judge(drawn_run(36), RULE, failure="its service exited during the windows")
    assert (passed.statistical_decision, passed.decision) == ("pass", "fail")


def test_windows_without_figures_are_an_error_unless_the_candidate_failed() -> None:
    run = drawn_run(12)
    dead = msgspec.structs.replace(
        run.windows[-1].candidate,
        cpu_s=0.0,
        latency_ms=msgspec.structs.replace(run.windows[-1].candidate.latency_ms, samples=0),
        slow=0,
    )
    broken = msgspec.structs.replace(
        run, windows=(*run.windows[:-1], msgspec.structs.replace(run.windows[-1], candidate=dead))
    )
    with pytest.raises(ComparisonError, match="some window has no value"):
        judge(broken, RULE)
    j = judge(broken, RULE, failure="its service exited during the windows")
    assert (j.decision, j.looks) == ("fail", ())


def test_versions_that_differ_by_side_are_named() -> None:
    changes = [DependencyChange("numpy", "2.2.0", "2.2.1"), DependencyChange("six", None, "1.17")]
    j = judge(drawn_run(36), RULE, dependencies=changes)
    assert j.decision == "pass"
    assert j.reasons[-1] == (
        "resolved dependency versions differ between the sides: numpy 2.2.0 -> 2.2.1, "
        "six (none) -> 1.17"
    )


def test_an_absolute_metric_in_its_own_unit_and_a_share_in_percentage_points() -> None:
    from ci.judge.gate_decision import _fmt_change
    from ci.settings.gate import GateMetric

    rss = GateMetric("rss_kb_per_1k_requests", "lower", 2000.0, "absolute")
    slow = GateMetric("slow_share", "lower", 0.01, "absolute")
    assert _fmt_change(rss, 18879.4) == "+18,879"
    assert _fmt_change(rss, -33.6) == "-33.6"
    assert _fmt_change(slow, 0.0229) == "+2.290 pp"
