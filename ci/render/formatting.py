"""Numbers and labels as report text. Numbers we format are safe (digits, signs, %, units),
so they are returned as :class:`Markup`; untrusted text goes through :func:`ci.render.escape.md`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup

from ci.judge.compare import MetricComparison
from ci.render.escape import md
from ci.results import RunMeta

_UNITS = {
    "latency": "ms",
    "ttfe": "ms",
    "throughput_rps": "rps",
    "peak_rss_mb": "MB",
    "cpu_ms_per_request": "ms",
}
LABELS = {
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


def metric_label(name: str) -> Markup:
    return md(LABELS.get(name, name))


def value(metric: str, value: float | None) -> Markup:
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


def change_text(m: MetricComparison, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if m.mode == "ratio":
        return f"{value * 100:+.1f}%"
    if m.metric == "error_rate":
        return f"{value * 100:+.3f} pp"
    if m.metric in _FRACTIONS:
        return f"{value * 100:+.2f} pp"
    return f"{value:+.4g}"


def change(m: MetricComparison) -> Markup:
    return Markup(change_text(m, m.change))


def interval(m: MetricComparison) -> Markup:
    if m.ci_low is None or m.ci_high is None:
        return Markup("n/a")
    return Markup(f"[{change_text(m, m.ci_low)}, {change_text(m, m.ci_high)}]")


def p_value(p: float | None) -> Markup:
    if p is None:
        return Markup("n/a")
    return Markup("&lt;0.001" if p < 0.001 else f"{p:.3f}")


def status(status: str) -> Markup:
    text = status.upper()
    return Markup(f"**{text}**" if status in ("fail", "error") else text)


def _distinct(values: Sequence[str | None], limit: int = 12) -> str:
    seen: list[str] = []
    for v in values:
        text = "n/a" if v is None else v[:limit]
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def meta_rows(base: Sequence[RunMeta], cand: Sequence[RunMeta]) -> list[tuple[str, str, str]]:
    """The "run details" table: per row the distinct values of each side."""

    def row(
        name: str, get: Callable[[RunMeta], str | None], limit: int = 200
    ) -> tuple[str, str, str]:
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
