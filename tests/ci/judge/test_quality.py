"""The recall check's decision, and its place in the gate's one judgement."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from ci.judge.gate_decision import rejudge
from ci.judge.gate_verdict import dump_verdict, load_verdict
from ci.judge.quality import judge_quality
from ci.results.quality import QualityRun, SideQuality
from ci.settings.gate import GateRule
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import verdict


def side(recall: float, short: float = 0.0) -> SideQuality:
    return SideQuality(
        queries=240, filtered=120, recall_at_k=recall, recall_filtered=recall,
        recall_unfiltered=recall, short_share=short, failed=0,
    )  # fmt: skip


def run(base: SideQuality, candidate: SideQuality) -> QualityRun:
    return QualityRun(k=10, sample_seed=42, base=base, candidate=candidate)


def test_equal_recall_passes_and_a_drop_beyond_the_threshold_fails() -> None:
    rule = GateRule(recall_drop=0.01)
    assert judge_quality(run(side(0.98), side(0.98)), rule).status == "pass"
    assert judge_quality(run(side(0.98), side(0.975)), rule).status == "pass"
    check = judge_quality(run(side(0.98), side(0.95)), rule)
    assert check.status == "fail"
    assert math.isclose(check.recall_change, -0.03)
    assert check.reasons == (
        "recall@10 0.950 against the base's 0.980 (-3.0 pp, beyond the 1.0 pp allowed; "
        "filtered 0.950 vs 0.980, unfiltered 0.950 vs 0.980)",
    )


def test_more_short_answers_fail_even_at_equal_recall() -> None:
    check = judge_quality(run(side(0.99, 0.0), side(0.99, 0.05)), GateRule())
    assert check.status == "fail"
    assert "5.0 % of queries answered with fewer hits than the exact top-10" in check.reasons[0]


def test_a_faster_candidate_that_loses_recall_fails_named_faster_but_less_accurate() -> None:
    windows = drawn_run(12, sd=0.01, cpu_effect=-0.2, seed=3)
    v = verdict(windows, quality=run(side(0.99), side(0.90)))
    j = v.judgement
    assert j.statistical_decision != "fail"
    assert (j.decision, j.conclusion) == ("fail", "failure")
    assert j.reasons[0].startswith("faster but less accurate (cpu_ms_per_request lower): recall")
    assert v.headline.startswith("Performance gate: FAIL \u2014 faster but less accurate")


def test_the_same_recall_passes_the_gate() -> None:
    v = verdict(quality=run(side(0.99), side(0.99)))
    assert v.judgement.decision == "pass"


def test_rejudging_the_folder_reproduces_the_recall_failure(tmp_path: Path) -> None:
    windows = drawn_run(12, sd=0.02, seed=5)
    v = verdict(windows, quality=run(side(0.99), side(0.9)))
    dump_verdict(v, tmp_path / "verdict.json")
    again = load_verdict(tmp_path / "verdict.json")
    assert again.quality == v.quality
    assert rejudge(again, windows) == v.judgement
    assert rejudge(msgspec.structs.replace(again, quality=None), windows).decision == "pass"


def test_impossible_figures_are_refused() -> None:
    with pytest.raises(ValueError, match=r"recall_at_k = 1\.5"):
        side(1.5)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"k": 10}, QualityRun)


def test_a_threshold_outside_its_range_is_refused() -> None:
    from ci.errors import ConfigError

    with pytest.raises(ConfigError, match=r"gate.recall_drop = 1.5: must lie in \[0, 1\)"):
        GateRule(recall_drop=1.5)


def test_answers_lost_to_errors_are_named_as_errors_not_as_a_faster_search() -> None:
    failing = msgspec.structs.replace(side(0.90), failed=24)
    check = judge_quality(run(side(0.99), failing), GateRule(), ("cpu_ms_per_request",))
    assert check.status == "fail"
    assert not check.reasons[0].startswith("faster but less accurate")
    assert check.reasons[0].endswith("; 24 of 240 searches failed and count as empty")


def per_query(recalls: list[float]) -> SideQuality:
    mean = sum(recalls) / len(recalls)
    return SideQuality(
        queries=len(recalls), filtered=0, recall_at_k=mean, recall_filtered=1.0,
        recall_unfiltered=mean, short_share=0.0, failed=0, recalls=tuple(recalls),
    )  # fmt: skip


def test_a_drop_beyond_the_threshold_within_the_builds_noise_passes() -> None:
    # two HNSW builds answer some queries differently in both directions: 1.5 pp lower on
    # average over 200 queries, but 30 queries half worse against 24 half better
    base = [0.5] * 200
    cand = [0.0] * 30 + [1.0] * 24 + [0.5] * 146
    rule = GateRule(recall_drop=0.01, recall_build_sd=0.0)
    check = judge_quality(run(per_query(base), per_query(cand)), rule)
    assert check.recall_change < -0.01
    assert check.p_drop is not None
    assert check.p_drop > 0.001
    assert check.status == "pass"


def test_a_clear_drop_beyond_the_threshold_fails_with_its_paired_p() -> None:
    base = [0.9] * 200
    cand = [0.7] * 30 + [0.9] * 170
    rule = GateRule(recall_drop=0.01, recall_build_sd=0.0)
    check = judge_quality(run(per_query(base), per_query(cand)), rule)
    assert check.status == "fail"
    assert check.p_drop is not None
    assert check.p_drop < 1e-6
    assert check.interval is not None
    assert check.interval[1] < 0
    assert "beyond build noise, p = " in check.reasons[0]


def test_queries_without_an_exact_answer_on_either_side_are_left_out_of_the_pairs() -> None:
    base = msgspec.structs.replace(per_query([0.9] * 3), recalls=(0.9, None, 0.9))
    cand = msgspec.structs.replace(per_query([0.9] * 3), recalls=(0.9, 0.9, None))
    check = judge_quality(run(base, cand), GateRule())
    assert check.p_drop is None  # one pair is too few for a test: the threshold alone


def test_an_impossible_per_query_recall_is_refused() -> None:
    with pytest.raises(ValueError, match=r"recalls\[1\] = 1\.5"):
        msgspec.structs.replace(per_query([0.9, 0.9]), recalls=(0.9, 1.5))


def test_a_drop_within_the_spread_between_two_builds_passes_and_a_larger_one_fails() -> None:
    # a worse HNSW graph: 34 of 200 queries find one neighbour fewer, -1.7 pp, with a small
    # per-query SE; two builds of identical code differ by that much (recall_build_sd)
    base = per_query([0.9] * 200)
    worse_graph = per_query([0.8] * 34 + [0.9] * 166)
    assert judge_quality(run(base, worse_graph), GateRule(recall_build_sd=0.0)).status == "fail"
    assert judge_quality(run(base, worse_graph), GateRule(recall_build_sd=0.017)).status == "pass"
    much_worse = per_query([0.5] * 40 + [0.9] * 160)  # -8 pp, far beyond any build
    check = judge_quality(run(base, much_worse), GateRule(recall_build_sd=0.017))
    assert check.status == "fail"
    assert check.p_drop is not None
    assert check.p_drop < 0.001


def sample_of(recalls: list[float]) -> SideQuality:
    """A side over a 960-query sample, half of it filtered."""
    return msgspec.structs.replace(per_query(recalls), filtered=len(recalls) // 2)


def on_base(base: list[float], candidate: list[float], cross: list[float] | None) -> QualityRun:
    return QualityRun(
        k=10,
        sample_seed=42,
        base=sample_of(base),
        candidate=sample_of(candidate),
        candidate_on_base=None if cross is None else sample_of(cross),
    )


BASE = [1.0] * 480 + [0.9] * 480  # 960 queries, recall 0.95


def test_identical_answers_on_the_base_s_graph_pass_with_no_spread() -> None:
    check = judge_quality(on_base(BASE, BASE, BASE), GateRule())
    assert check.status == "pass"
    assert check.reasons == ()
    assert check.recall_change_on_base == 0.0
    assert check.p_drop_on_base == 1.0
    assert check.interval_on_base == (0.0, 0.0)


def test_a_3_pp_drop_on_the_base_s_graph_fails_where_the_own_graphs_cannot_tell() -> None:
    # the sides' own figures show no drop (the candidate's own graph happened to answer as
    # the base's), but its code on the base's graph finds one neighbour fewer in 288 of 960
    # queries (-3 pp)
    cross = [r - 0.1 for r in BASE[:288]] + BASE[288:]
    check = judge_quality(on_base(BASE, BASE, cross), GateRule())
    assert check.status == "fail"
    assert len(check.reasons) == 1
    assert check.reasons[0].startswith("recall@10 on the base's graph 0.920 against the base's ")
    assert "base's graph" in check.reasons[0]
    assert "(-3.0 pp [" in check.reasons[0]
    assert check.recall_change_on_base == pytest.approx(-0.03)
    assert check.p_drop_on_base is not None
    assert check.p_drop_on_base < 1e-6
    assert check.interval_on_base is not None
    assert check.interval_on_base[1] < -0.02
    assert check.p_drop is not None
    assert check.p_drop >= 0.5  # the own-graph test: no drop


def test_a_drop_on_the_base_s_graph_within_the_threshold_passes() -> None:
    cross = [r - 0.1 for r in BASE[:96]] + BASE[96:]  # -1 pp, clear but allowed
    check = judge_quality(on_base(BASE, BASE, cross), GateRule(recall_drop=0.015))
    assert check.status == "pass"
    assert check.p_drop_on_base is not None
    assert check.p_drop_on_base < 1e-6


def test_without_figures_on_the_base_s_graph_the_check_is_the_sides_own() -> None:
    worse = [r - 0.1 for r in BASE[:288]] + BASE[288:]
    for candidate in (BASE, worse):
        without = judge_quality(on_base(BASE, candidate, None), GateRule())
        plain = judge_quality(run(sample_of(BASE), sample_of(candidate)), GateRule())
        assert without == plain
        assert without.recall_change_on_base is None
        assert without.p_drop_on_base is None


def test_the_base_s_graph_pairs_with_the_base_s_code_there_when_it_was_measured() -> None:
    # the base's measured service read 0.95; its code as a short-lived service on its graph,
    # asked with the candidate's, read 0.92 in the same queries as the candidate's code did:
    # no drop, though the candidate's code reads 3 pp under the base's measured figure
    lower = [r - 0.1 for r in BASE[:288]] + BASE[288:]
    stored = on_base(BASE, BASE, lower)
    assert judge_quality(stored, GateRule()).status == "fail"  # paired with the base itself
    paired = msgspec.structs.replace(stored, base_on_base=sample_of(lower))
    check = judge_quality(paired, GateRule())
    assert check.status == "pass"
    assert (check.recall_change_on_base, check.p_drop_on_base) == (0.0, 1.0)
    worse = [r - 0.1 for r in lower[:288]] + lower[288:]  # 0.89 against its 0.92
    failed = judge_quality(
        msgspec.structs.replace(paired, candidate_on_base=sample_of(worse)), GateRule()
    )
    assert failed.status == "fail"
    assert failed.reasons[0].startswith(
        "recall@10 on the base's graph 0.890 against the base's 0.920 "
    )


def test_searches_that_failed_on_the_base_s_graph_are_left_out_of_its_pairs() -> None:
    # the candidate's code fails 100 searches on the base's schema and answers the rest as
    # the base does: no drop (the windows judge errors)
    cross = msgspec.structs.replace(
        sample_of(BASE), failed=100, recalls=(None,) * 100 + tuple(BASE[100:])
    )
    q = msgspec.structs.replace(on_base(BASE, BASE, None), candidate_on_base=cross)
    check = judge_quality(q, GateRule())
    assert check.status == "pass"
    assert check.recall_change_on_base == 0.0


def test_the_base_s_graph_failure_is_named_faster_but_less_accurate_when_faster() -> None:
    cross = [r - 0.2 for r in BASE[:480]] + BASE[480:]
    check = judge_quality(on_base(BASE, BASE, cross), GateRule(), ("latency_p50",))
    assert check.reasons[0].startswith(
        "faster but less accurate (latency_p50 lower): recall@10 on the base's graph"
    )


def test_a_verdict_with_figures_on_the_base_s_graph_rejudges_the_same(tmp_path: Path) -> None:
    windows = drawn_run(12, sd=0.02, seed=5)
    cross = [r - 0.1 for r in BASE[:288]] + BASE[288:]
    v = verdict(windows, quality=on_base(BASE, BASE, cross))
    assert v.judgement.decision == "fail"
    assert any("on the base's graph" in r for r in v.judgement.reasons)
    dump_verdict(v, tmp_path / "verdict.json")
    again = load_verdict(tmp_path / "verdict.json")
    assert again.quality == v.quality
    assert rejudge(again, windows) == v.judgement
