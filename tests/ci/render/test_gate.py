"""The PR gate's comment and check text: the order reviewers read, and hostile text inert."""

from __future__ import annotations

import re

import msgspec
import pytest

from ci.judge.gate_verdict import Harness, LookDecision, Servers
from ci.render.gate import (
    MARKER,
    GateLinks,
    gate_check,
    no_verdict_check,
    no_verdict_comment,
    render_gate_comment,
    render_gate_summary,
    started_check,
)
from ci.settings.gate import GateDesign
from tests.ci.judge.gate_factory import verdict as judged_verdict
from tests.ci.judge.micro_factory import micro_run
from tests.ci.render.gate_verdicts import side_servers, verdict

RUN = "https://github.com/acme/search/actions/runs/1/attempts/2"
ARTIFACT = "https://github.com/acme/search/actions/runs/1/artifacts/9"
LINKS = GateLinks(RUN, ARTIFACT, "acme/search", 17)
HOSTILE = [
    "</details><img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "@org/team",
    "| broken | table |",
    "x" * 10_000,
    "feature\nnew line\r\n## heading",
    "`code` ```fence```",
    "![img](http://evil/x.png)",
    "\u202eevil",
]


def test_the_comment_reads_verdict_primary_changed_then_details() -> None:
    body = render_gate_comment(verdict(), LINKS)
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert lines[1] == "**Performance gate: FAIL (24 measured pairs)**"
    order = [
        "- latency\\_p95 \\+12\\.3 %",  # the reasons
        "| primary metric |",
        "| latency p95 | 20.0 ms | 22.5 ms | +12.3 % | [+11.3 %, +13.3 %] | +10.0 % | 0.0004 "
        "| **FAIL** |",
        "**Changed clearly**",
        "| latency p90 | 12.0 ms | 13.5 ms | +11.0 % | [+7.0 %, +15.0 %] |",
        f"[workflow run]({RUN}) \u00b7 [artifact \\(report, raw windows\\)]({ARTIFACT})",
        "<details>",
        "### Report-only metrics",
        "### SLA against the base",
        "### Sequential looks",
        "### Run",
        "</details>",
    ]
    positions = [body.index(part) for part in order]
    assert positions == sorted(positions), "sections out of order"
    before_details = body[: body.index("<details>")]
    assert "latency p50" not in before_details  # unchanged report-only metrics are collapsed
    assert "pre-existing" not in before_details
    assert "| sse | error rate | &lt; 0.100 % | 3.860 % | 3.900 % | pre-existing" in body
    assert "Pull request: acme/search \\#17" in body


@pytest.mark.parametrize("decision", ["pass", "fail", "inconclusive"])
def test_check_title_is_the_decision_and_its_first_reason(decision: LookDecision) -> None:
    v = verdict(decision, reasons=("first reason", "second"))
    check = gate_check(v, LINKS)
    assert check.title == f"{decision.upper()}: first reason"
    assert MARKER not in check.summary
    assert check.summary == render_gate_summary(v, LINKS)
    assert "- second" in check.summary


def test_nothing_changed_clearly_is_said() -> None:
    v = verdict("pass")
    rows = tuple(msgspec.structs.replace(r, changed=False) for r in v.judgement.report_only)
    quiet = verdict("pass", report_only=rows)
    body = render_gate_comment(quiet, GateLinks())
    assert "No report-only metric changed clearly." in body
    assert "[workflow run]" not in body  # no links given, none shown


def test_a_harness_change_is_stated() -> None:
    v = verdict(
        harness=Harness(
            revision="b" * 40,
            source="base revision",
            changed=True,
            paths=("ci/judge/gate.py", "perf.toml"),
        )
    )
    body = render_gate_comment(v, LINKS)
    assert "this pull request changes ci/judge/gate\\.py, perf\\.toml" in body


def test_servers_that_differ_between_the_sides_get_one_line() -> None:
    same = Servers(postgres="shared", base=side_servers(), candidate=side_servers())
    assert "Servers" not in render_gate_comment(verdict(servers=same), LINKS)
    bumped = Servers(
        postgres="per side",
        base=side_servers(),
        candidate=side_servers("18.7", "0.8.7", "18.7.0", "9.1.3"),
    )
    lines = [
        line
        for line in render_gate_comment(verdict(servers=bumped), LINKS).splitlines()
        if "Servers" in line
    ]
    assert lines == [
        "Servers, base \u2192 candidate: PostgreSQL 18\\.6 \\+ pgvector 0\\.8\\.6 "
        "\\(embedded\\-postgres 18\\.6\\.3\\) \u2192 18\\.7 \\+ pgvector 0\\.8\\.7 "
        "\\(embedded\\-postgres 18\\.7\\.0\\), one server per side; Valkey 9\\.1\\.2 \u2192 "
        "9\\.1\\.3."
    ]
    # only Valkey's install differs (the candidate's venv has none): PostgreSQL is not named
    fallback = Servers(
        postgres="shared",
        base=side_servers(),
        candidate=msgspec.structs.replace(side_servers(), valkey_from="harness"),
    )
    body = render_gate_comment(verdict(servers=fallback), LINKS)
    line = "Servers, base \u2192 candidate: Valkey 9\\.1\\.2 \u2192 9\\.1\\.2 \\(the harness's\\)."
    assert [ln for ln in body.splitlines() if "Servers" in ln] == [line]


def test_the_run_says_which_opt_in_parts_of_the_design_ran() -> None:
    plain = render_gate_comment(verdict(design=GateDesign(burst_gap_s=0.0, db_rtt_ms=0.0)), LINKS)
    assert "one after the other" not in plain
    assert "relay" not in plain
    spaced = verdict(design=GateDesign(rate=75, burst_gap_s=2.5, db_rtt_ms=4.0))
    body = render_gate_comment(spaced, LINKS)
    assert "; the sides burst one after the other, 2\\.5 s apart" in body
    assert "; each side reached PostgreSQL through a relay of a 4 ms round trip" in body


def test_unsafe_links_are_not_made_links() -> None:
    body = render_gate_comment(verdict(), GateLinks("javascript:alert(1)", None))
    assert "](javascript" not in body


def _assert_inert(body: str, details: int = 1) -> None:
    assert "<img" not in body
    assert "</details><" not in body
    assert body.count("</details>") == details
    assert body.count("<details>") == details
    assert "](javascript" not in body
    assert "@org" not in body
    assert "![" not in body
    assert "\u202e" not in body
    width = None  # cells of the table being read: every row keeps its header's count
    for line in body.splitlines():
        assert len(line) < 2000, "long untrusted text must be truncated"
        assert not line.startswith("## heading")
        if not line.startswith("|"):
            width = None
            continue
        cells = len(re.split(r"(?<!\\)\|", line))  # an unescaped pipe is a cell border
        width = width or cells
        assert cells == width, line


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_verdict_text_is_inert(text: str) -> None:
    v = verdict(text=text)
    _assert_inert(render_gate_comment(v, GateLinks(RUN, ARTIFACT, text, 17)))
    assert gate_check(v, LINKS).title.startswith("FAIL: ")  # plain text; the poster trims it


def test_texts_without_a_verdict() -> None:
    started = started_check(LINKS)
    assert started.title == "Measuring"
    assert f"[workflow run]({RUN})" in started.summary
    crash = no_verdict_check("FAIL: the perf-pr run timed out", "No verdict.", LINKS)
    assert crash.title == "FAIL: the perf-pr run timed out"
    assert crash.summary.startswith("**FAIL\\: the perf\\-pr run timed out**")
    comment = no_verdict_comment("FAIL: the perf-pr run timed out", "No verdict.", LINKS)
    assert comment.startswith(MARKER + "\n**Performance gate\\: FAIL\\: the perf\\-pr run")
    for text in HOSTILE:
        _assert_inert(no_verdict_comment(text, text, GateLinks(text)), details=0)


def test_absolute_metrics_read_in_their_units() -> None:
    rows = {
        line.split(" | ")[0]: line
        for line in render_gate_comment(judged_verdict(), LINKS).splitlines()
        if line.startswith("| ")
    }
    lead, tail = rows["| tail lead"], rows["| tail share"]
    rss = rows["| RSS growth per 1k requests"]
    assert re.search(
        r"\| [+-]\d+\.\d pp \| \[[+-]\d+\.\d pp, [+-]\d+\.\d pp\] \| \+15\.0 pp \|", lead
    )
    assert re.search(
        r"\| [+-]\d+\.\d\d pp \| \[[+-]\d+\.\d\d pp, [+-]\d+\.\d\d pp\] \| no \|", tail
    )
    assert re.search(r"\| [+-][\d,]+ KB \| \[[+-][\d,]+ KB, [+-][\d,]+ KB\] \| \+5,000 KB \|", rss)


def test_the_micro_benchmarks_get_a_table_after_the_primary_metrics() -> None:
    v = judged_verdict(micro=micro_run({"search_response": 14.0, "stream_frame": 0.1}))
    body = render_gate_comment(v, LINKS)
    assert (
        body.index("| primary metric") < body.index("| micro-benchmark (") < body.index("<details>")
    )
    rows = {line.split(" | ")[0]: line for line in body.splitlines() if line.startswith("| ")}
    assert re.fullmatch(
        r"\| search\\_response \| 5\.\d+ µs \| \d\d\.\d µs \| \+1,[34]\d\d % "
        r"\[\+1,\d+ %, \+1,\d+ %\] \| \+25\.0 % \| \*\*FAIL\*\* \|",
        rows["| search\\_response"],
    )
    assert rows["| stream\\_frame"].endswith("| +25.0 % | changed |")
    assert rows["| parse\\_search"].endswith("| +25.0 % | pass |")
    assert "p ≤ 0.0025, Holm over 4 cases" in body
    assert gate_check(v, LINKS).title.startswith("FAIL: micro-benchmark search_response +1,")
