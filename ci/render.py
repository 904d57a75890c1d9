"""Render verdict objects as GitHub Markdown and self-contained HTML. No statistics here.

Markdown templates run with autoescape off, so every interpolated value must pass through
the ``md`` filter (or be a number formatted here): a ``finalize`` hook refuses any plain
string that reaches the output, so forgetting ``|md`` fails loudly instead of opening a
hole. HTML templates run with Jinja2 autoescape on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ci import plots
from ci.compare import (
    Comparison,
    MetricComparison,
    SlaCheck,
    Verdict,
    metric_values,
    verdict,
)
from ci.measure.diagnose import RunDiagnostics
from ci.errors import RenderError
from ci.escape import md, md_link, safe_url
from ci.results import RunMeta, RunResults

MARKER = "<!-- perfci:comment -->"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Where a comparison came from; every field is untrusted text except the numbers."""

    repository: str | None = None
    pr_number: int | None = None
    pr_title: str | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    run_url: str | None = None
    artifact_url: str | None = None
    report_url: str | None = None


@dataclass(frozen=True, slots=True)
class _Plot:
    title: str
    uri: str


# -- formatting (numbers we produce are safe: digits, signs, %, units) ---------------------

_UNITS = {
    "latency": "ms",
    "ttfe": "ms",
    "throughput_rps": "rps",
    "peak_rss_mb": "MB",
    "cpu_ms_per_request": "ms",
}
_LABELS = {
    "latency_p50": "latency p50",
    "latency_p90": "latency p90",
    "latency_p95": "latency p95",
    "latency_p99": "latency p99",
    "throughput_rps": "throughput",
    "error_rate": "error rate",
    "ttfe_p50": "time to first event p50",
    "ttfe_p95": "time to first event p95",
    "ttfe_p99": "time to first event p99",
    "cache_hit_ratio": "cache hit ratio",
    "peak_rss_mb": "peak RSS",
    "cpu_ms_per_request": "service CPU per request",
    "p95_ms": "latency p95",
    "p99_ms": "latency p99",
    "rss_slope_mb_per_10min": "RSS growth",
}
_FRACTIONS = {"error_rate", "cache_hit_ratio"}


def _metric_label(name: str) -> Markup:
    return md(_LABELS.get(name, name))


def _value(metric: str, value: float | None) -> Markup:
    if value is None or not math.isfinite(value):
        return Markup("n/a")
    if metric == "error_rate":
        return Markup(f"{value * 100:.3f} %")
    if metric in _FRACTIONS:
        return Markup(f"{value * 100:.2f} %")
    if metric in ("p95_ms", "p99_ms"):
        return Markup(f"{value:.1f} ms")
    if metric == "rss_slope_mb_per_10min":
        return Markup(f"{value:.2f} MB/10 min")
    unit = next((u for k, u in _UNITS.items() if metric.startswith(k)), "")
    if metric == "time" or unit == "":
        return Markup(f"{value:.4g}")
    if metric == "cpu_ms_per_request":
        return Markup(f"{value:.3f} {unit}")
    return Markup(f"{value:.1f} {unit}")


def _change(m: MetricComparison, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if m.mode == "ratio":
        return f"{value * 100:+.1f}%"
    if m.metric == "error_rate":
        return f"{value * 100:+.3f} pp"
    if m.metric in _FRACTIONS:
        return f"{value * 100:+.2f} pp"
    return f"{value:+.4g}"


def _interval(m: MetricComparison) -> Markup:
    if m.ci_low is None or m.ci_high is None:
        return Markup("n/a")
    return Markup(f"[{_change(m, m.ci_low)}, {_change(m, m.ci_high)}]")


def _p(p: float | None) -> Markup:
    if p is None:
        return Markup("n/a")
    return Markup("&lt;0.001" if p < 0.001 else f"{p:.3f}")


def _status(status: str) -> Markup:
    text = status.upper()
    return Markup(f"**{text}**" if status in ("fail", "error") else text)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def headline_detail(v: Verdict) -> str:
    parts = []
    if v.regressions:
        parts.append(_plural(v.regressions, "regression"))
    if v.sla_failures:
        parts.append(_plural(v.sla_failures, "SLA failure"))
    if v.errors:
        parts.append(_plural(v.errors, "statistics error"))
    if v.warnings:
        parts.append(_plural(v.warnings, "warning"))
    if v.inconclusive:
        parts.append(f"{v.inconclusive} inconclusive")
    if v.improvements:
        parts.append(_plural(v.improvements, "improvement"))
    return ", ".join(parts) if parts else "no significant change"


def headline(v: Verdict) -> str:
    """One line: the verdict first, then what made it."""
    return f"Performance: {v.status.upper()} \u2014 {headline_detail(v)}"


def _distinct(values: Sequence[str | None], limit: int = 12) -> str:
    seen: list[str] = []
    for v in values:
        text = "n/a" if v is None else v[:limit]
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def _meta_rows(base: Sequence[RunMeta], cand: Sequence[RunMeta]) -> list[tuple[str, str, str]]:
    def row(name: str, get: Any, limit: int = 200) -> tuple[str, str, str]:
        return (
            name,
            _distinct([get(r) for r in base], limit),
            _distinct([get(r) for r in cand], limit),
        )

    return [
        row("commits", lambda r: r.git_commit, 12),
        row("ref", lambda r: r.git_ref),
        row("profile", lambda r: r.profile),
        row("machine", lambda r: r.machine.machine_class),
        row("platform", lambda r: r.machine.platform),
        row("python", lambda r: r.machine.python),
        row("k6", lambda r: r.tools.k6),
        row("vegeta", lambda r: r.tools.vegeta),
        ("runs", str(len(base)), str(len(cand))),
    ]


# -- Jinja environment -----------------------------------------------------------------------


def _refuse_unescaped(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Markup):
        raise RenderError(
            f"unescaped text reached a Markdown template: {value[:60]!r}; use the md filter"
        )
    if isinstance(value, float):
        raise RenderError(f"unformatted number {value!r} reached a Markdown template")
    return value


@functools.cache
def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_refuse_unescaped if markdown else None,
    )
    env.filters.update(
        md=md,
        md_link=md_link,
        safe_url=safe_url,
        metric_label=_metric_label,
        value=_value,
        p=_p,
        status=_status,
        interval=_interval,
    )
    env.globals.update(change=lambda m: Markup(_change(m, m.change)))
    return env


def _render(name: str, **values: Any) -> str:
    markdown = name.endswith(".md.j2")
    try:
        return _environment(markdown).get_template(name).render(**values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc


def _comparison_values(
    comparison: Comparison, sla_checks: Sequence[SlaCheck], context: RenderContext
) -> dict[str, Any]:
    v = verdict(comparison, sla_checks)
    return {
        "headline": Markup(f"**Performance: {v.status.upper()}** \u2014 {headline_detail(v)}"),
        "headline_text": headline(v),
        "verdict": v,
        "comparison": comparison,
        "mode": "paired" if comparison.paired else "unpaired",
        "pairs": len(comparison.candidate_runs) if comparison.paired else None,
        "n_base": len(comparison.base_runs),
        "n_candidate": len(comparison.candidate_runs),
        "level": Markup(f"{comparison.interval_level * 100:.0f}%"),
        "sla": list(sla_checks),
        "meta": _meta_rows(comparison.base_runs, comparison.candidate_runs),
        "ctx": context,
    }


def render_summary(
    comparison: Comparison, sla_checks: Sequence[SlaCheck], context: RenderContext
) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    return _render("summary.md.j2", **_comparison_values(comparison, sla_checks, context))


def render_comment(
    comparison: Comparison, sla_checks: Sequence[SlaCheck], context: RenderContext
) -> str:
    """The pull-request comment: the hidden marker line first, then the summary."""
    body = _render("comment.md.j2", **_comparison_values(comparison, sla_checks, context))
    assert body.startswith(MARKER + "\n"), "comment template must start with the marker"
    return body


# -- HTML reports ----------------------------------------------------------------------------


def _timeseries_plots(
    named_runs: Mapping[str, RunResults], scenario_names: Sequence[str]
) -> list[_Plot]:
    out: list[_Plot] = []
    for name in scenario_names:
        series = {
            side: run.scenario(name).timeseries
            for side, run in named_runs.items()
            if name in run.scenario_names and run.scenario(name).timeseries
        }
        if series:
            title = f"{name}: latency over time"
            out.append(_Plot(title, plots.to_data_uri(plots.latency_over_time(series, title))))
            title = f"{name}: throughput over time"
            out.append(_Plot(title, plots.to_data_uri(plots.throughput_over_time(series, title))))
        samples = {
            side: run.scenario(name).resources.samples
            for side, run in named_runs.items()
            if name in run.scenario_names and run.scenario(name).resources.samples
        }
        if samples:
            title = f"{name}: RSS over time"
            out.append(_Plot(title, plots.to_data_uri(plots.rss_over_time(samples, title))))
    return out


def _distribution_plots(
    comparison: Comparison, base: Sequence[RunResults], candidate: Sequence[RunResults]
) -> list[_Plot]:
    out: list[_Plot] = []
    for scenario in comparison.scenarios:
        figures: dict[str, tuple[list[float], list[float]]] = {}
        for m in scenario.metrics:
            b = metric_values(base, scenario.name, m.metric)
            c = metric_values(candidate, scenario.name, m.metric)
            if b and c:
                figures[_LABELS.get(m.metric, m.metric)] = (b, c)
        if figures:
            title = f"{scenario.name}: per-run figures, base vs candidate"
            out.append(_Plot(title, plots.to_data_uri(plots.distributions(figures, title))))
    return out


def render_html_report(
    comparison: Comparison,
    sla_checks: Sequence[SlaCheck],
    context: RenderContext,
    base: Sequence[RunResults],
    candidate: Sequence[RunResults],
) -> str:
    """A self-contained HTML report (inline CSS, plots as data: URIs)."""
    if not base or not candidate:
        raise RenderError("an HTML comparison report needs the base and candidate results")
    names = list(base[0].scenario_names)
    figures = _distribution_plots(comparison, base, candidate)
    figures += _timeseries_plots({"base": base[0], "candidate": candidate[0]}, names)
    values = _comparison_values(comparison, sla_checks, context)
    return _render(
        "report.html.j2",
        report="comparison",
        plots=figures,
        run=None,
        diag=RunDiagnostics(),
        **values,
    )


def render_run_report(results: RunResults, diagnostics: RunDiagnostics | None = None) -> str:
    """A self-contained HTML report of one run (no comparison), for ``perfci run``.

    ``diagnostics`` (ci.diagnose) adds links to the profiles and query plan written beside
    the report, the allocation sites that grew, and each scenario's top statements.
    """
    figures = _timeseries_plots({"run": results}, results.scenario_names)
    return _render(
        "report.html.j2",
        report="run",
        plots=figures,
        run=results,
        diag=diagnostics or RunDiagnostics(),
        headline_text=f"Performance run {results.run.id}",
        meta=[],
        sla=[],
        comparison=None,
        ctx=RenderContext(),
    )
