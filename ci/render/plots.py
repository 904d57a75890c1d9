"""Matplotlib figures as PNG bytes, for embedding in the self-contained HTML report.

Figures are built with the object API on an Agg canvas (no pyplot global state, no
display). Labels from result files are untrusted: ``$`` would start mathtext, so it is
escaped, and long names are cut.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ci.results import LatencyHistogram, ResourceSample, TimePoint

DPI = 80
_MAX_LABEL = 60


def label(text: str) -> str:
    """Make untrusted text safe as a matplotlib label (no mathtext, bounded length)."""
    text = " ".join(text.split())
    if len(text) > _MAX_LABEL:
        text = text[: _MAX_LABEL - 1] + "\u2026"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def to_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No "Software"/time metadata: the same figures give the same bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _finish(fig: Figure, title: str) -> bytes:
    fig.suptitle(label(title))
    for ax in fig.axes:
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return _png(fig)


def latency_over_time(series: Mapping[str, Sequence[TimePoint]], title: str) -> bytes:
    """p50/p95/p99 per second, one line style per series (e.g. base, candidate)."""
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    styles = ("-", "--", ":", "-.")
    for i, (name, points) in enumerate(series.items()):
        t = [p.t for p in points]
        style = styles[i % len(styles)]
        for key, colour in (
            ("p50_ms", "tab:green"),
            ("p95_ms", "tab:orange"),
            ("p99_ms", "tab:red"),
        ):
            values = [getattr(p, key) for p in points]
            ax.plot(t, values, style, color=colour, label=label(f"{name} {key[:3]}"))
    ax.set_xlabel("seconds since scenario start")
    ax.set_ylabel("latency (ms)")
    return _finish(fig, title)


def throughput_over_time(series: Mapping[str, Sequence[TimePoint]], title: str) -> bytes:
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    for name, points in series.items():
        ax.plot([p.t for p in points], [p.rps for p in points], label=label(name))
    ax.set_xlabel("seconds since scenario start")
    ax.set_ylabel("requests per second")
    return _finish(fig, title)


def rss_over_time(series: Mapping[str, Sequence[ResourceSample]], title: str) -> bytes:
    """Resident memory per process (role and pid) for each series."""
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    for name, samples in series.items():
        by_process: dict[tuple[str, int], list[ResourceSample]] = {}
        for s in samples:
            by_process.setdefault((s.role, s.pid), []).append(s)
        for (role, pid), points in by_process.items():
            ax.plot(
                [p.t for p in points],
                [p.rss_mb for p in points],
                label=label(f"{name} {role} {pid}"),
            )
    ax.set_xlabel("seconds since scenario start")
    ax.set_ylabel("RSS (MB)")
    return _finish(fig, title)


def cpu_over_time(series: Mapping[str, Sequence[ResourceSample]], title: str) -> bytes:
    """CPU per process (100 % = one core) for each series, as the sampler measured it."""
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    for name, samples in series.items():
        by_process: dict[tuple[str, int], list[ResourceSample]] = {}
        for s in samples:
            by_process.setdefault((s.role, s.pid), []).append(s)
        for (role, pid), points in by_process.items():
            ax.plot(
                [p.t for p in points],
                [p.cpu_percent for p in points],
                label=label(f"{name} {role} {pid}"),
            )
    ax.set_xlabel("seconds since scenario start")
    ax.set_ylabel("CPU (% of one core)")
    return _finish(fig, title)


def latency_histogram(hist: LatencyHistogram, title: str) -> bytes:
    """Requests per latency bin on a log axis, the bins as they were counted."""
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    edges = list(hist.edges_ms)
    widths = [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(edges[:-1], list(hist.counts), width=widths, align="edge", edgecolor="white")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests")
    return _finish(fig, title)


def distributions(
    figures: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str
) -> bytes:
    """Per-run summary figures, base versus candidate: a box and the individual runs."""
    n = max(1, len(figures))
    fig = Figure(figsize=(min(3.0 * n, 12.0), 3.2))
    for i, (metric, (base, cand)) in enumerate(figures.items(), start=1):
        ax = fig.add_subplot(1, n, i)
        data = [list(base), list(cand)]
        ax.boxplot(data, widths=0.5, showfliers=False)
        for x, values in enumerate(data, start=1):
            offsets = [x + 0.08 * ((j % 5) - 2) for j in range(len(values))]
            ax.plot(offsets, values, "o", alpha=0.6, markersize=4)
        ax.set_xticks([1, 2], ["base", "candidate"])
        ax.set_title(label(metric), fontsize="small")
    return _finish(fig, title)
