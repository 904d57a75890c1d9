"""Self-contained HTML reports (inline CSS, plots as data: URIs): of a comparison, of a run."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ci.errors import RenderError
from ci.judge.compare import Comparison
from ci.judge.verdict import Judgement
from ci.render import plots
from ci.render.environment import RenderContext, comparison_values, render_template
from ci.render.formatting import LABELS
from ci.results import Diagnostics, RunResults


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    uri: str


def _timeseries_plots(
    named_runs: Mapping[str, RunResults], scenario_names: Sequence[str]
) -> list[Plot]:
    out: list[Plot] = []
    for name in scenario_names:
        series = {
            side: run.scenario(name).timeseries
            for side, run in named_runs.items()
            if name in run.scenario_names and run.scenario(name).timeseries
        }
        if series:
            title = f"{name}: latency over time"
            out.append(Plot(title, plots.to_data_uri(plots.latency_over_time(series, title))))
            title = f"{name}: throughput over time"
            out.append(Plot(title, plots.to_data_uri(plots.throughput_over_time(series, title))))
        samples = {
            side: run.scenario(name).resources.samples
            for side, run in named_runs.items()
            if name in run.scenario_names and run.scenario(name).resources.samples
        }
        if samples:
            title = f"{name}: RSS over time"
            out.append(Plot(title, plots.to_data_uri(plots.rss_over_time(samples, title))))
            title = f"{name}: CPU over time"
            out.append(Plot(title, plots.to_data_uri(plots.cpu_over_time(samples, title))))
        for side, run in named_runs.items():
            hist = run.scenario(name).latency_histogram if name in run.scenario_names else None
            if hist is not None:
                title = f"{name}: latency histogram" + ("" if side == "run" else f" ({side})")
                out.append(Plot(title, plots.to_data_uri(plots.latency_histogram(hist, title))))
    return out


def _distribution_plots(comparison: Comparison) -> list[Plot]:
    out: list[Plot] = []
    for scenario in comparison.scenarios:
        figures: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
        for m in scenario.metrics:
            if m.base_values and m.candidate_values:
                figures[LABELS.get(m.metric, m.metric)] = (m.base_values, m.candidate_values)
        if figures:
            title = f"{scenario.name}: per-run figures, base vs candidate"
            out.append(Plot(title, plots.to_data_uri(plots.distributions(figures, title))))
    return out


def render_html_report(judgement: Judgement, context: RenderContext) -> str:
    """The comparison report; the time series shown are those of each side's first run."""
    base, candidate = judgement.base, judgement.candidate
    if not base or not candidate:
        raise RenderError("an HTML comparison report needs the base and candidate results")
    figures = _distribution_plots(judgement.comparison)
    names = list(base[0].scenario_names)
    figures += _timeseries_plots({"base": base[0], "candidate": candidate[0]}, names)
    return render_template(
        "report.html.j2",
        report="comparison",
        plots=figures,
        run=None,
        diag=Diagnostics(),
        missing=frozenset(),
        **comparison_values(judgement, context),
    )


def render_run_report(results: RunResults, missing_files: Collection[str] = ()) -> str:
    """The report of one run (no comparison), from its results alone.

    ``results.diagnostics`` adds links to the profiles and the query plan written beside
    ``results.json``, the allocation sites that grew, and each scenario's top statements;
    a linked file named in ``missing_files`` is listed without a link.
    """
    figures = _timeseries_plots({"run": results}, results.scenario_names)
    return render_template(
        "report.html.j2",
        report="run",
        plots=figures,
        run=results,
        diag=results.diagnostics or Diagnostics(),
        missing=frozenset(missing_files),
        headline_text=f"Performance run {results.run.id}",
        meta=[],
        sla=[],
        comparison=None,
        ctx=RenderContext(),
    )
