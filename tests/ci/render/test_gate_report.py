"""The gate's report.html: the verdict's tables, the windows plot, untrusted text escaped."""

from __future__ import annotations

import msgspec

from ci.render.gate_report import render_gate_report
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import sla_row, verdict


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
