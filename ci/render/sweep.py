"""Tables and plots of ``perfci sweep index|pool|workers`` (text and PNG)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# What the tables read, as protocols: render sits below experiments and never imports them.


class SweepPoint(Protocol):
    @property
    def variant(self) -> str: ...
    @property
    def knob(self) -> str: ...
    @property
    def value(self) -> int: ...
    @property
    def recall_at_10(self) -> float: ...
    @property
    def p50_ms(self) -> float: ...
    @property
    def p99_ms(self) -> float: ...
    @property
    def qps(self) -> Mapping[int, float]: ...
    @property
    def build_s(self) -> float: ...
    @property
    def index_mb(self) -> float: ...


class Knob(Protocol):
    @property
    def label(self) -> str: ...


class LoadRow(Protocol):
    @property
    def value(self) -> int: ...
    @property
    def scenario(self) -> str: ...
    @property
    def runs(self) -> int: ...
    @property
    def throughput_rps(self) -> float: ...
    @property
    def throughput_spread(self) -> tuple[float, float]: ...
    @property
    def p95_ms(self) -> float: ...
    @property
    def p99_ms(self) -> float: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def meets_sla(self) -> bool: ...
    @property
    def relative(self) -> float | None: ...


def _pyplot() -> Any:  # matplotlib is untyped; loaded only when a plot is made
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def index_table(points: Sequence[SweepPoint], concurrency: Sequence[int]) -> str:
    """recall@10, latency, QPS per concurrency, build time and size per swept setting."""
    head = (
        f"{'index':34} {'knob':>14} {'recall@10':>9} {'p50 ms':>7} {'p99 ms':>7} "
        + " ".join(f"{'QPS@' + str(c):>8}" for c in concurrency)
        + f" {'build s':>8} {'size MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for p in points:
        lines.append(
            f"{p.variant:34} {p.knob + '=' + str(p.value):>14} {p.recall_at_10:9.3f} "
            f"{p.p50_ms:7.2f} {p.p99_ms:7.2f} "
            + " ".join(f"{p.qps[c]:8.0f}" for c in concurrency)
            + f" {p.build_s:8.1f} {p.index_mb:8.1f}"
        )
    return "\n".join(lines)


def index_plot_png(points: Sequence[SweepPoint], concurrency: int) -> bytes:
    """Recall against QPS (log scale), one line per index variant, knob values annotated."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in dict.fromkeys(p.variant for p in points):
        pts = [p for p in points if p.variant == variant]
        ax.plot(
            [p.recall_at_10 for p in pts], [p.qps[concurrency] for p in pts], "o-", label=variant
        )
        for p in pts:
            ax.annotate(str(p.value), (p.recall_at_10, p.qps[concurrency]), fontsize=7)
    ax.set_xlabel("recall@10 (vs exact)")
    ax.set_ylabel(f"queries per second (concurrency {concurrency})")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def load_table(rows: Sequence[LoadRow], knob: Knob) -> str:
    """Per value and scenario: medians, spread, ratio to the first value, the SLA check."""
    head = (
        f"{'scenario':12} {knob.label:>9} {'runs':>4} {'req/s':>8} {'min-max':>15} "
        f"{'x first':>7} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}  SLA"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lo, hi = r.throughput_spread
        rel = f"{r.relative:.2f}" if r.relative is not None else "n/a"
        lines.append(
            f"{r.scenario:12} {r.value:>9} {r.runs:>4} {r.throughput_rps:>8.1f} "
            f"{f'{lo:.0f}-{hi:.0f}':>15} {rel:>7} {r.p95_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{100 * r.error_rate:>6.2f}%  {'meets' if r.meets_sla else 'MISSES'}"
        )
    return "\n".join(lines)


def load_plot_png(rows: Sequence[LoadRow], knob: Knob) -> bytes:
    """Throughput (bars) and p95 (line) against the value, one panel per scenario."""
    plt = _pyplot()
    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5 * len(scenarios), 3.6), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        mine = [r for r in rows if r.scenario == scenario]
        labels = [str(r.value) for r in mine]
        ax.bar(labels, [r.throughput_rps for r in mine], color="#4c72b0")
        ax.set_xlabel(knob.label)
        ax.set_ylabel("requests/s (median)")
        ax.set_title(scenario)
        twin = ax.twinx()
        twin.plot(labels, [r.p95_ms for r in mine], color="#dd8452", marker="o")
        twin.set_ylabel("p95 ms", color="#dd8452")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
