"""The gate's report folder: the verdict file first, then what is rendered from it.

The file names are :class:`ci.judge.gate_folder.GateFolder`'s; ``windows.json`` and the
shape runs are written while measuring (``sequential``, ``shapes``).
"""

from __future__ import annotations

from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateVerdict, dump_verdict
from ci.render.gate import GateLinks, render_gate_summary
from ci.render.gate_report import render_gate_report
from ci.results.duet import load_duet


def write_outputs(folder: GateFolder, verdict: GateVerdict) -> None:
    """``verdict.json`` (first, so that a rendering problem never loses it), then
    ``summary.md`` and ``report.html``."""
    dump_verdict(verdict, folder.verdict)
    folder.summary.write_text(render_gate_summary(verdict, GateLinks()), encoding="utf-8")
    run = load_duet(folder.windows) if folder.windows.exists() else None
    folder.report.write_text(render_gate_report(verdict, run, folder), encoding="utf-8")
