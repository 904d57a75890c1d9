"""The micro-benchmarks' table: one row per case, in the script's order, judged by the verdict's
rule; a verdict without them has none."""

from __future__ import annotations

import msgspec

from ci.render.gate_micro import MicroRow, micro_table
from ci.settings.gate import GateRule
from tests.ci.judge.gate_factory import verdict
from tests.ci.judge.micro_factory import micro_run


def test_each_case_is_a_row_with_its_status() -> None:
    run = micro_run({"search_response": 0.5, "stream_frame": 0.1}, missing={"parse_search": "base"})
    table = micro_table(verdict(micro=run))
    assert table is not None
    assert table.caption == (
        "median time per call over 12 rounds, a fresh process per side in each; p \u2264 0.0025, "
        "Holm over 3 cases"
    )
    assert [(r.case, r.status, r.limit) for r in table.rows] == [
        ("search_response", "FAIL", "+25.0 %"),
        ("stream_frame", "changed", "+25.0 %"),
        ("cache_round_trip", "pass", "+25.0 %"),
        ("parse_search", "missing", "-"),
    ]
    first = table.rows[0]
    assert first.base.endswith(" \u00b5s")
    assert first.change.startswith("+5")
    assert first.change.count("[") == 1
    assert table.rows[3] == MicroRow(
        case="parse_search",
        base="n/a",
        candidate=table.rows[3].candidate,
        change="n/a",
        limit="-",
        status="missing",
        note="the base's code lacks it",
    )


def test_the_verdict_s_own_threshold_is_the_limit() -> None:
    v = verdict(micro=micro_run({"search_response": 0.5}))
    lenient = msgspec.structs.replace(v, rule=GateRule(micro_threshold=1.0))
    table = micro_table(lenient)
    assert table is not None
    assert (table.rows[0].status, table.rows[0].limit) == ("changed", "+100 %")


def test_too_few_rounds_to_fail_are_said() -> None:
    table = micro_table(verdict(micro=micro_run({"search_response": 0.5}, rounds=8)))
    assert table is not None
    assert table.caption.endswith("; 8 rounds cannot reach that level: no case can fail")
    assert table.rows[0].status == "changed"


def test_no_table_without_micro_benchmarks() -> None:
    assert micro_table(verdict()) is None
