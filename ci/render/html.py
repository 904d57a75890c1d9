"""The self-contained HTML report of one run (inline CSS, plots as data: URIs)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial

from ci.render import plots
from ci.render.environment import render_template
from ci.results import Diagnostics, RunResults


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    uri: str


def _plots(results: RunResults) -> list[Plot]:
    out: list[Plot] = []
    for s in results.scenarios:
        pngs: list[tuple[str, Callable[[str], bytes]]] = []
        if s.timeseries:
            series = {"run": s.timeseries}
            pngs.append(("latency over time", partial(plots.latency_over_time, series)))
            pngs.append(("throughput over time", partial(plots.throughput_over_time, series)))
        if s.resources.samples:
            samples = {"run": s.resources.samples}
            pngs.append(("RSS over time", partial(plots.rss_over_time, samples)))
            pngs.append(("CPU over time", partial(plots.cpu_over_time, samples)))
        if s.latency_histogram is not None:
            pngs.append(
                ("latency histogram", partial(plots.latency_histogram, s.latency_histogram))
            )
        for what, draw in pngs:
            title = f"{s.name}: {what}"
            out.append(Plot(title, plots.to_data_uri(draw(title))))
    return out


def render_run_report(results: RunResults, missing_files: Collection[str] = ()) -> str:
    """The report of one run (no comparison), from its results alone.

    ``results.diagnostics`` adds links to the profiles and the query plan written beside
    ``results.json``, the allocation sites that grew, and each scenario's top statements;
    a linked file named in ``missing_files`` is listed without a link.
    """
    figures = _plots(results)
    return render_template(
        "report.html.j2",
        plots=figures,
        run=results,
        diag=results.diagnostics or Diagnostics(),
        missing=frozenset(missing_files),
        headline_text=f"Performance run {results.run.id}",
    )
