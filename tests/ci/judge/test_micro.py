"""The micro-benchmarks' decision: signed-rank per case over the rounds, Holm across cases,
a FAIL only beyond gate.micro_threshold; and its place in the gate's one decision."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from ci.errors import ConfigError
from ci.judge.gate_decision import rejudge
from ci.judge.gate_verdict import dump_verdict, load_verdict
from ci.judge.micro import MICRO_ALPHA_SHARE, judge_micro, micro_level, per_call, relative
from ci.settings.gate import GateRule
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import verdict
from tests.ci.judge.micro_factory import micro_run


def test_identical_code_with_process_noise_passes() -> None:
    for seed in range(1, 11):
        check = judge_micro(micro_run(0.0, sd=0.03, seed=seed), GateRule())
        assert check.status == "pass", seed
        assert check.reasons == ()
        assert all(c.status == "pass" for c in check.cases)


def test_thirty_percent_slower_fails_and_the_reason_names_the_case() -> None:
    check = judge_micro(micro_run({"search_response": 0.30}), GateRule())
    assert check.status == "fail"
    by_name = {c.name: c for c in check.cases}
    failed = by_name["search_response"]
    assert failed.status == "fail"
    assert failed.change is not None
    assert failed.change >= 0.25
    assert failed.p_slower == 2.0**-12  # every round slower: the smallest p of 12 pairs
    assert [c.status for c in check.cases[1:]] == ["pass", "pass", "pass"]
    (reason,) = check.reasons
    assert reason.startswith("micro-benchmark search_response +")
    assert "per call (" in reason
    assert "beyond its +25.0 % limit (p = 0.00024, Holm over 4 cases at 0.0025)" in reason


def test_ten_percent_slower_passes_but_is_reported_as_changed() -> None:
    check = judge_micro(micro_run({"search_response": 0.10}), GateRule())
    assert check.status == "pass"
    assert check.reasons == ()
    case = check.cases[0]
    assert case.status == "changed"
    assert case.change is not None
    assert 0.05 < case.change < 0.25
    assert case.interval is not None
    assert case.interval[0] < case.change < case.interval[1]


def test_the_threshold_is_the_rule_s() -> None:
    slower = micro_run({"stream_frame": 0.30})
    assert judge_micro(slower, GateRule(micro_threshold=0.5)).status == "pass"
    assert judge_micro(slower, GateRule(micro_threshold=0.2)).status == "fail"


def test_holm_across_the_cases_at_the_check_s_share_of_alpha() -> None:
    assert micro_level(GateRule()) == pytest.approx(0.01 * MICRO_ALPHA_SHARE)
    # 11 rounds: p = 2^-11 = 4.9e-4 reaches Holm's first level 0.0025 / 4 = 6.25e-4
    assert judge_micro(micro_run({"search_response": 0.5}, rounds=11), GateRule()).reachable
    # 10 rounds: p >= 2^-10 = 9.8e-4, above it: no case can fail, and the check says so
    short = judge_micro(micro_run({"search_response": 0.5}, rounds=10), GateRule())
    assert (short.status, short.reachable) == ("pass", False)
    assert short.cases[0].status == "changed"


def test_a_case_one_side_lacks_is_missing_not_judged() -> None:
    run = micro_run(0.5, missing={"stream_frame": "candidate", "parse_search": "base"})
    check = judge_micro(run, GateRule())
    by_name = {c.name: c for c in check.cases}
    assert by_name["stream_frame"].status == "missing"
    assert by_name["stream_frame"].note == "the candidate's code lacks it"
    assert by_name["stream_frame"].candidate is None
    assert by_name["parse_search"].note == "the base's code lacks it"
    assert check.judged == 2
    assert check.status == "fail"
    assert "Holm over 2 cases" in check.reasons[0]


def test_numbers_read_as_reviewers_expect() -> None:
    assert relative(14.0) == "+1,400 %"
    assert relative(0.31) == "+31.0 %"
    assert relative(-0.042) == "-4.2 %"
    assert per_call(19.4e-6) == "19.4 \u00b5s"
    assert per_call(1.3e-6) == "1.3 \u00b5s"
    assert per_call(850e-9) == "850 ns"
    assert per_call(2.5e-3) == "2.5 ms"
    assert per_call(None) == "n/a"


def test_a_threshold_outside_its_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"gate.micro_threshold = 0: must lie in \(0, 10\]"):
        GateRule(micro_threshold=0)
    with pytest.raises(ConfigError, match=r"gate.micro_threshold = nan"):
        GateRule(micro_threshold=math.nan)


def test_a_micro_fail_fails_the_gate_and_heads_its_reasons() -> None:
    v = verdict(micro=micro_run({"search_response": 14.0}))
    j = v.judgement
    assert (j.statistical_decision, j.decision, j.conclusion) == ("pass", "fail", "failure")
    assert j.reasons[0].startswith("micro-benchmark search_response +1,4")
    assert j.reasons[1].startswith("every primary metric")
    assert v.headline.startswith("Performance gate: FAIL \u2014 micro-benchmark search_response")


def test_a_micro_pass_leaves_the_gate_s_decision_and_reasons_alone() -> None:
    windows = drawn_run(12, sd=0.02)
    plain = verdict(windows).judgement
    assert verdict(windows, micro=micro_run(0.0)).judgement == plain
    assert verdict(windows, micro=micro_run({"search_response": 0.1})).judgement == plain


def test_a_verdict_without_micro_decodes_and_judges_as_before(tmp_path: Path) -> None:
    windows = drawn_run(12, sd=0.02, seed=5)
    v = verdict(windows)
    path = tmp_path / "verdict.json"
    dump_verdict(v, path)
    # a verdict written before the micro-benchmarks: no "micro" key, no micro_threshold
    data = msgspec.json.decode(path.read_bytes())
    del data["micro"]
    del data["rule"]["micro_threshold"]
    del data["design"]["micro_rounds"]
    path.write_bytes(msgspec.json.encode(data))
    older = load_verdict(path)
    assert older.micro is None
    assert older.rule == GateRule()
    assert rejudge(older, windows) == v.judgement


def test_rejudging_reproduces_the_micro_failure(tmp_path: Path) -> None:
    windows = drawn_run(12, sd=0.02, seed=5)
    v = verdict(windows, micro=micro_run({"cache_round_trip": 0.6}))
    dump_verdict(v, tmp_path / "verdict.json")
    again = load_verdict(tmp_path / "verdict.json")
    assert again.micro == v.micro
    assert rejudge(again, windows) == v.judgement
    assert v.judgement.decision == "fail"
    assert rejudge(msgspec.structs.replace(again, micro=None), windows).decision == "pass"
