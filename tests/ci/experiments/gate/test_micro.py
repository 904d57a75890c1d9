"""The micro-benchmark stage: rounds of fresh processes per side in alternating order, a failed
process the side's (or the harness's when both fail), and the judge on real figures."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from ci.errors import RunError, SideFailure
from ci.experiments.gate.micro import measure_micro, round_order, run_cases
from ci.experiments.gate.sidecode import SideCode
from ci.judge.micro import judge_micro
from ci.results.duet import Side
from ci.settings.gate import GateRule
from tests.ci.experiments.gate.code_copies import REPO, STDLIB_JSON, code_copy

PYTHON = Path(sys.executable)
ENV = {"PYTHONHASHSEED": "0"}


def _fake(tmp_path: Path, name: str, body: str) -> SideCode:
    """A side whose "python" is a shell script: it ignores the case script and runs ``body``."""
    exe = tmp_path / name
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return SideCode(exe, tmp_path, ENV)


def _printing(tmp_path: Path, name: str, output: str) -> SideCode:
    return _fake(tmp_path, name, f"echo '{output}'")


def test_the_order_alternates_from_a_seeded_start() -> None:
    for seed in range(6):
        orders = round_order(seed, 6)
        firsts = [first for first, _second in orders]
        assert firsts[0::2] == [firsts[0]] * 3
        assert firsts[1::2] == [orders[0][1]] * 3
        assert all({a, b} == {"base", "candidate"} for a, b in orders)
        assert orders == round_order(seed, 6)
    assert {round_order(seed, 1)[0][0] for seed in range(20)} == {"base", "candidate"}


def test_figures_are_stored_per_round_in_the_scripts_case_order(tmp_path: Path) -> None:
    sides: dict[Side, SideCode] = {
        "base": _printing(tmp_path, "base", '{"a": 2e-6, "b": 1e-6}'),
        "candidate": _printing(tmp_path, "cand", '{"a": 3e-6, "b": null}'),
    }
    lines: list[str] = []
    run = measure_micro(sides, 4, seed=3, progress=lines.append)
    assert run.cases == ("a", "b")
    assert [r.first for r in run.rounds] == [first for first, _ in round_order(3, 4)]
    assert run.figures("a", "candidate") == (3e-6,) * 4
    assert run.figures("b", "candidate") == (None,) * 4
    assert "micro-benchmarks: the candidate's code lacks b" in lines


def test_both_sides_of_a_round_share_a_hash_seed_drawn_anew_each_round(tmp_path: Path) -> None:
    # each side's "python" prints the PYTHONHASHSEED it was started with as its figure
    sides: dict[Side, SideCode] = {
        side: _fake(tmp_path, side, 'echo "{\\"seed\\": $PYTHONHASHSEED}"')
        for side in ("base", "candidate")
    }
    run = measure_micro(sides, 6, seed=5)
    seeds = run.figures("seed", "base")
    assert seeds == run.figures("seed", "candidate")
    assert len(set(seeds)) == 6
    assert [r.hash_seed for r in run.rounds] == [int(x or 0) for x in seeds]
    assert measure_micro(sides, 6, seed=5).figures("seed", "base") == seeds  # from the seed


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("echo 'Traceback: boom' >&2; exit 3", "exited with status 3: Traceback: boom"),
        ("echo 'not json'", "printed no JSON object: 'not json"),
        ("echo '[1, 2]'", "not an object of cases"),
        ("echo '{\"a\": -1}'", "case a = -1, not seconds per call"),
        ("echo '{\"a\": true}'", "case a = True, not seconds per call"),
    ],
)
def test_a_candidate_whose_process_fails_is_the_candidate_s_failure(
    tmp_path: Path, body: str, message: str
) -> None:
    sides: dict[Side, SideCode] = {
        "base": _printing(tmp_path, "base", '{"a": 2e-6}'),
        "candidate": _fake(tmp_path, "cand", body),
    }
    with pytest.raises(SideFailure, match="the micro-benchmarks: ") as caught:
        measure_micro(sides, 2, seed=0)
    assert caught.value.side == "candidate"
    assert message in str(caught.value)


def test_a_base_whose_process_fails_is_the_base_s_failure(tmp_path: Path) -> None:
    sides: dict[Side, SideCode] = {
        "base": _fake(tmp_path, "base", "exit 1"),
        "candidate": _printing(tmp_path, "cand", '{"a": 2e-6}'),
    }
    with pytest.raises(SideFailure) as caught:
        measure_micro(sides, 2, seed=0)
    assert caught.value.side == "base"


def test_both_sides_failing_is_the_harness_s_error(tmp_path: Path) -> None:
    sides: dict[Side, SideCode] = {
        "base": _fake(tmp_path, "base", "exit 1"),
        "candidate": _fake(tmp_path, "cand", "exit 2"),
    }
    with pytest.raises(RunError, match="failed on both sides") as caught:
        measure_micro(sides, 2, seed=0)
    assert not isinstance(caught.value, SideFailure)


def test_sides_reporting_other_cases_are_the_harness_s_error(tmp_path: Path) -> None:
    sides: dict[Side, SideCode] = {
        "base": _printing(tmp_path, "base", '{"a": 2e-6}'),
        "candidate": _printing(tmp_path, "cand", '{"b": 2e-6}'),
    }
    with pytest.raises(RunError, match="one script runs both sides"):
        measure_micro(sides, 2, seed=0)


def test_a_process_that_hangs_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"micro_cases\.py took more than 0\.5 s"):
        run_cases(_fake(tmp_path, "slow", "sleep 5"), timeout_s=0.5)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_identical_code_on_both_sides_does_not_fail() -> None:
    side = SideCode(PYTHON, REPO, ENV)
    run = measure_micro({"base": side, "candidate": side}, 4, seed=1)
    assert run.cases == ("search_response", "stream_frame", "cache_round_trip", "parse_search")
    assert all(x is not None for r in run.rounds for x in (*r.base, *r.candidate))
    check = judge_micro(run, GateRule())
    assert check.status == "pass", check.cases


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_search_answers_encoded_by_the_standard_library_fail_on_search_response(
    tmp_path: Path,
) -> None:
    base = SideCode(PYTHON, REPO, ENV)
    candidate = SideCode(PYTHON, code_copy(tmp_path, STDLIB_JSON), ENV)
    run = measure_micro({"base": base, "candidate": candidate}, 12, seed=2)
    check = judge_micro(run, GateRule())
    assert check.status == "fail"
    by_name = {c.name: c for c in check.cases}
    assert by_name["search_response"].status == "fail"
    assert check.reasons[0].startswith("micro-benchmark search_response +")
    # only the search answer's body goes through ORJSONResponse.render
    assert all(by_name[c].status != "fail" for c in by_name if c != "search_response")
