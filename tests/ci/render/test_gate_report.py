"""The gate's report.html: the verdict's tables, the windows plot, untrusted text escaped."""

from __future__ import annotations

import msgspec

from ci.judge.gate_verdict import Servers, SideServers
from ci.render.gate_report import render_gate_report
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import sla_row, verdict
from tests.ci.judge.micro_factory import micro_run


def test_the_report_shows_the_decision_looks_sla_and_windows() -> None:
    run = drawn_run(12, sd=0.02)
    html = render_gate_report(verdict(run, sla=[sla_row("pre-existing")]), run)
    assert '<h1 class="pass">Performance gate: PASS</h1>' in html
    assert "Look 1: 12 windows" in html
    assert "CPU per request" in html or "cpu_ms_per_request" in html
    assert "pre-existing" in html
    assert 'src="data:image/png;base64,' in html


def test_hostile_refs_are_escaped() -> None:
    run = drawn_run(12, sd=0.02)
    html = render_gate_report(verdict(run, base_ref="<img src=x onerror=alert(1)>"), run)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_without_windows_there_is_no_plot() -> None:
    html = render_gate_report(verdict(), None)
    assert "data:image/png" not in html


def test_the_flame_graphs_of_a_fail_are_linked() -> None:
    flames = ("profiles/base.cpu.1.svg", "profiles/flame-diff.svg")
    v = msgspec.structs.replace(verdict(), flamegraphs=flames)
    html = render_gate_report(v, None)
    assert '<a href="profiles/base.cpu.1.svg">' in html
    assert '<a href="profiles/flame-diff.svg">' in html


def test_the_servers_each_side_ran_are_named() -> None:
    def side(postgres: str, source: str) -> SideServers:
        return msgspec.convert(
            {"postgres": postgres, "pgvector": "0.8.6", "postgres_package": "18.6.3",
             "postgres_from": source, "valkey": "9.1.2", "valkey_from": "harness"},
            SideServers,
        )  # fmt: skip

    servers = Servers(
        postgres="per side", base=side("18.6", "harness"), candidate=side("18.7", "side's venv")
    )
    html = render_gate_report(msgspec.structs.replace(verdict(), servers=servers), None)
    assert (
        "Servers, base / candidate: PostgreSQL 18.6 + pgvector 0.8.6 (harness) / 18.7 + pgvector "
        "0.8.6 (side&#39;s venv), one server per side; Valkey 9.1.2 (harness) / 9.1.2 (harness)."
    ) in html
    assert "Servers," not in render_gate_report(verdict(), None)


def test_the_micro_benchmarks_are_a_table_and_their_case_names_are_escaped() -> None:
    run = micro_run({"search_response": 2.0}, missing={"parse_search": "base"})
    hostile = msgspec.structs.replace(run, cases=("<b>x</b>", *run.cases[1:]))
    html = render_gate_report(verdict(micro=hostile), None)
    assert "<h2>Micro-benchmarks</h2>" in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html
    assert '<td class="fail">FAIL</td>' in html
    assert "the base&#39;s code lacks it" in html
    assert "Micro-benchmarks" not in render_gate_report(verdict(), None)
