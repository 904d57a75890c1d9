"""The gate's final decision: the windows' rule, then the SLA against the base."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from ci.errors import ResultsError
from ci.judge.gate_verdict import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    dump_verdict,
    load_verdict,
)
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import sla_row, verdict


def test_an_unchanged_revision_passes() -> None:
    j = verdict().judgement
    assert (j.decision, j.statistical_decision, j.conclusion) == ("pass", "pass", "success")
    assert verdict().exit_code == EXIT_PASS
    assert j.reasons[0].startswith("every primary metric (cpu_ms_per_request, latency_p50")
    assert j.pairs == 12
    assert [m.name for m in j.looks[-1].metrics] == [
        "cpu_ms_per_request", "latency_p50", "latency_p90", "error_rate", "slow_share",
        "rss_kb_per_1k_requests",
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
    assert v.judgement.reasons[-1] == (
        "this pull request changes the harness (ci/judge/gate.py, perf.toml): "
        "the base's harness measured both sides"
    )


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
