"""The PR gate's ``report.html``: the verdict's tables and the windows, self-contained.

Input is the verdict (:mod:`ci.judge.gate_verdict`) and the duet file it was judged from;
nothing is decided here. The plots show every measured window's figure per side (the
pairs the rule judged), so a reviewer can see the spread behind each estimate.
"""

from __future__ import annotations

from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateVerdict
from ci.judge.window_metrics import side_value
from ci.render import plots
from ci.render.environment import render_template
from ci.render.formatting import gate_name
from ci.render.gate import design_options
from ci.render.gate_micro import micro_table
from ci.results.duet import DuetRun

_PLOTTED = ("cpu_ms_per_request", "latency_p50", "latency_p90", "latency_p95", "latency_p99")


def _window_plot(run: DuetRun) -> str | None:
    figures: dict[str, tuple[list[float], list[float]]] = {}
    for metric in _PLOTTED:
        base = [side_value(metric, w.base) for w in run.measured]
        cand = [side_value(metric, w.candidate) for w in run.measured]
        if base and all(v is not None for v in base + cand):
            figures[gate_name(metric)] = (
                [v for v in base if v is not None],
                [v for v in cand if v is not None],
            )
    if not figures:
        return None
    title = f"{len(run.measured)} measured windows: base vs candidate"
    return plots.to_data_uri(plots.distributions(figures, title))


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _files(folder: GateFolder) -> list[str]:
    """The folder's files a reader follows, relative to it."""
    found = [p for p in (folder.verdict, folder.windows, folder.summary) if p.exists()]
    if folder.shapes.is_dir():
        found += sorted(folder.shapes.glob("*/**/report.html"))
        found += sorted(folder.shapes.glob("*/**/results.json"))
    return [str(p.relative_to(folder.root)) for p in found]


def render_gate_report(
    verdict: GateVerdict, run: DuetRun | None, folder: GateFolder | None = None
) -> str:
    """The HTML report of one gate run (``run`` None: the duet file is missing)."""
    plot = _window_plot(run) if run is not None and run.measured else None
    return render_template(
        "gate_report.html.j2",
        v=verdict,
        j=verdict.judgement,
        specs={m.name: m for m in verdict.rule.metrics},
        medians={r.name: r for r in verdict.judgement.primary},
        files=[*(_files(folder) if folder is not None else []), *verdict.flamegraphs],
        plot=plot,
        pct=_pct,
        label=gate_name,  # plain text: the template escapes it
        windows=run.windows if run is not None else (),
        options=design_options(verdict.design),
        micro=micro_table(verdict),
    )
