"""Numbers and labels as report text. Numbers we format are safe (digits, signs, %, units),
so they are returned as :class:`Markup`; untrusted text goes through :func:`ci.render.escape.md`.
"""

from __future__ import annotations

import math

from markupsafe import Markup

from ci.render.escape import md

_UNITS = {
    "latency": "ms",
    "ttfe": "ms",
    "throughput_rps": "rps",
    "peak_rss_mb": "MB",
    "cpu_ms_per_request": "ms",
    # the gate's duet metrics
    "stream_": "ms",
    "burst_latency": "ms",
    "service_cpu_ms": "ms",
    "postgres_cpu_ms": "ms",
    "valkey_cpu_ms": "ms",
    "relay_cpu_ms": "ms",
    "rss_kb_per_1k": "KB",
    "rss_peak_mb": "MB",
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
#: The gate's duet metrics where their names differ from a run's (its CPU is the whole side's).
GATE_LABELS = {
    "cpu_ms_per_request": "CPU per request, whole side",
    "service_cpu_ms_per_request": "service CPU per request",
    "postgres_cpu_ms_per_request": "PostgreSQL CPU per request",
    "valkey_cpu_ms_per_request": "Valkey CPU per request",
    "valkey_calls_per_request": "Valkey commands per request",
    "relay_cpu_ms_per_request": "relay CPU per request",
    "slow_share": "tail share",
    "slow_lead": "tail lead",
    "rss_kb_per_1k_requests": "RSS growth per 1k requests",
    "rss_peak_mb": "peak RSS",
    "stream_ttfe_p50": "stream first event p50",
    "stream_ttfe_p95": "stream first event p95",
    "stream_last_p50": "stream last event p50",
    "stream_last_p95": "stream last event p95",
    "burst_latency_p50": "burst latency p50",
    "burst_latency_p90": "burst latency p90",
}
FRACTIONS = {"error_rate", "cache_hit_ratio", "slow_share", "slow_lead"}


def metric_label(name: str) -> Markup:
    return md(LABELS.get(name, name))


def gate_name(name: str) -> str:
    """A duet metric's name as the gate's comment and report show it (plain text)."""
    return GATE_LABELS.get(name) or LABELS.get(name, name)


def gate_label(name: str) -> Markup:
    """:func:`gate_name`, escaped for Markdown."""
    return md(gate_name(name))


def value(metric: str, value: float | None) -> Markup:
    if value is None or not math.isfinite(value):
        return Markup("n/a")
    if metric == "error_rate":
        return Markup(f"{value * 100:.3f} %")
    if metric in FRACTIONS:
        return Markup(f"{value * 100:.2f} %")
    if metric in ("p95_ms", "p99_ms"):
        return Markup(f"{value:.1f} ms")
    if metric == "rss_slope_mb_per_10min":
        return Markup(f"{value:.2f} MB/10 min")
    unit = next((u for k, u in _UNITS.items() if metric.startswith(k)), "")
    if unit == "":
        return Markup(f"{value:.4g}")
    if metric.endswith("cpu_ms_per_request"):
        return Markup(f"{value:.3f} {unit}")
    if unit == "KB":
        return Markup(f"{value:,.0f} {unit}")
    return Markup(f"{value:.1f} {unit}")
