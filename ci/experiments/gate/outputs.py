"""The gate's report folder: the verdict file first, then what is rendered from it.

==================  ===========================================================
file                written by
==================  ===========================================================
``verdict.json``    :func:`ci.judge.gate_verdict.dump_verdict` (first, so that a
                    rendering problem never loses the verdict)
``windows.json``    the windows as they were measured (``sequential``)
``comment.md``      :func:`ci.render.gate.render_gate_comment` (the sticky comment)
``summary.md``      :func:`ci.render.gate.render_gate_summary` (job summary)
``report.html``     :func:`ci.render.gate_report.render_gate_report`
``shapes/<side>/``  each side's shape run (results.json, report.html)
==================  ===========================================================
"""

from __future__ import annotations

from pathlib import Path

from ci.experiments.gate.shapes import ShapeRuns
from ci.judge.gate_verdict import VERDICT_FILE, GateVerdict, dump_verdict
from ci.render.gate import GateLinks, render_gate_comment, render_gate_summary
from ci.render.gate_report import render_gate_report
from ci.results.duet import load_duet


def write_outputs(out: Path, verdict: GateVerdict, shapes: ShapeRuns | None) -> dict[str, Path]:
    del shapes  # their own report.html files are written by the runs themselves
    files = {"verdict": out / VERDICT_FILE}
    dump_verdict(verdict, files["verdict"])
    links = GateLinks()
    files["comment"] = out / "comment.md"
    files["comment"].write_text(render_gate_comment(verdict, links), encoding="utf-8")
    files["summary"] = out / "summary.md"
    files["summary"].write_text(render_gate_summary(verdict, links), encoding="utf-8")
    windows = out / "windows.json"
    run = load_duet(windows) if windows.exists() else None
    files["report"] = out / "report.html"
    files["report"].write_text(render_gate_report(verdict, run), encoding="utf-8")
    return files
