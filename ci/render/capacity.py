"""Tables and the plot of ``perfci sweep capacity`` (Markdown text and PNG)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Protocol

# What the tables read, as protocols: render sits below experiments and never imports them.


class Spread(Protocol):
    @property
    def median(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...


class CapacityRow(Protocol):
    @property
    def service(self) -> str: ...
    @property
    def mix(self) -> str: ...
    @property
    def rounds(self) -> int: ...
    @property
    def capacity_rps(self) -> Spread: ...
    @property
    def light_p50_ms(self) -> Spread: ...
    @property
    def light_p95_ms(self) -> Spread: ...
    @property
    def ratio(self) -> Spread | None: ...


class CapacityPoint(Protocol):
    @property
    def service(self) -> str: ...
    @property
    def mix(self) -> str: ...
    @property
    def round(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def rate(self) -> int: ...
    @property
    def achieved_rps(self) -> float: ...
    @property
    def p50_ms(self) -> float: ...
    @property
    def p95_ms(self) -> float: ...
    @property
    def p99_ms(self) -> float: ...
    @property
    def failed_rate(self) -> float: ...
    @property
    def dropped(self) -> int: ...
    @property
    def aborted(self) -> bool: ...
    @property
    def passed(self) -> bool: ...


MIX_LABELS = {"zipf": "Zipf query log", "unique": "all-unique (every request a miss)"}


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.1f}")


def _spread(s: Spread, fmt: str = "{:.0f}") -> str:
    if math.isnan(s.median):
        return "-"
    if s.low == s.high:
        return fmt.format(s.median)
    return f"{fmt.format(s.median)} [{fmt.format(s.low)}-{fmt.format(s.high)}]"


def capacity_table(rows: Sequence[CapacityRow], light_rate: int, p99_ms: float) -> str:
    """Capacity and light-load latency per mix and service: medians [min-max] over rounds."""
    lines = [
        f"| query mix | service | rounds | capacity req/s (p99 <= {p99_ms:g} ms, no errors) "
        f"| x reference | p50 ms at {light_rate}/s | p95 ms at {light_rate}/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = _spread(r.ratio, "{:.2f}") if r.ratio is not None else "-"
        lines.append(
            f"| {MIX_LABELS.get(r.mix, r.mix)} | {r.service} | {r.rounds} "
            f"| {_spread(r.capacity_rps)} | {ratio} "
            f"| {_spread(r.light_p50_ms, '{:.1f}')} | {_spread(r.light_p95_ms, '{:.1f}')} |"
        )
    return "\n".join(lines)


def steps_table(points: Sequence[CapacityPoint]) -> str:
    """Every measured step, in the order run."""
    lines = [
        "| round | mix | service | step | offered/s | answered/s | p50 ms | p95 ms | p99 ms "
        "| errors | dropped | verdict |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        verdict = "pass" if p.passed else ("fail, stopped early" if p.aborted else "fail")
        answered = "-" if p.aborted else f"{p.achieved_rps:.0f}"  # over a cut-short window
        lines.append(
            f"| {p.round} | {p.mix} | {p.service} | {p.step} | {p.rate} | {answered} "
            f"| {_ms(p.p50_ms)} | {_ms(p.p95_ms)} | {_ms(p.p99_ms)} | {100 * p.failed_rate:.2f} % "
            f"| {p.dropped} | {verdict} |"
        )
    return "\n".join(lines)


def _pyplot() -> Any:  # matplotlib is untyped; loaded only when a plot is made
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def capacity_plot_png(points: Sequence[CapacityPoint], p99_ms: float) -> bytes:
    """p99 against the offered rate (log-log), one panel per mix, one colour per service."""
    plt = _pyplot()
    mixes = list(dict.fromkeys(p.mix for p in points))
    fig, axes = plt.subplots(1, len(mixes), figsize=(6 * len(mixes), 4), squeeze=False)
    colours = {"service": "#4c72b0", "reference": "#dd8452"}
    for ax, mix in zip(axes[0], mixes, strict=True):
        for service in dict.fromkeys(p.service for p in points if p.mix == mix):
            mine = sorted((p for p in points if p.mix == mix and p.service == service),
                          key=lambda p: p.rate)  # fmt: skip
            ok = [p for p in mine if p.passed]
            bad = [p for p in mine if not p.passed]
            colour = colours.get(service, "#55a868")
            ax.scatter([p.rate for p in ok], [min(p.p99_ms, 1e4) for p in ok], color=colour,
                       marker="o", label=f"{service} pass")  # fmt: skip
            ax.scatter([p.rate for p in bad], [min(p.p99_ms, 1e4) for p in bad], color=colour,
                       marker="x", label=f"{service} fail")  # fmt: skip
        ax.axhline(p99_ms, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered requests/s (open model)")
        ax.set_ylabel("p99 ms (measured window)")
        ax.set_title(MIX_LABELS.get(mix, mix))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
