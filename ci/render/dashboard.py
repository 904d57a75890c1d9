"""The history dashboard: a static, self-contained site of the primary metrics over commits.

One chart per analysed metric and series: the values in commit order, each a link to its
commit; a band of the segment mean plus and minus two standard deviations between change
points (the noise the detector saw); a marked line at every change point. Charts are
inline SVG: no script, no stylesheet or font from elsewhere (the page must open from a
data branch, GitHub Pages or a downloaded artifact alike).

Commit subjects and every name come from files anyone can write to: they reach the page
through Jinja2's autoescape only, and URLs through :func:`ci.render.escape.safe_url`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ci.history.detect import ChangePoint, Detection, MetricAnalysis
from ci.render.environment import render_template
from ci.render.escape import safe_url
from ci.render.formatting import LABELS

WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 18, 46
BAND_SIGMAS = 2.0
Y_TICKS = 5
INDEX = "index.html"


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    commit: str
    short: str
    subject: str
    value: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Band:
    points: str  # SVG polygon points of mean +- BAND_SIGMAS sd over the segment
    mean_y: float
    x0: float
    x1: float


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    kind: str  # regression | improvement | change
    label: str
    reverted: bool


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class ChangePointRow:
    where: str  # metric and series
    commit: str
    short: str
    url: str | None
    subject: str
    before: str
    after: str
    change: str
    pvalue: str
    kind: str
    reverted_by: str | None
    reverted_url: str | None


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    metric: str
    unit: str
    direction: str
    points: tuple[Point, ...]
    line: str  # SVG polyline points
    bands: tuple[Band, ...]
    markers: tuple[Marker, ...]
    ticks: tuple[Tick, ...]
    change_points: tuple[ChangePointRow, ...]


def _unit(metric: str) -> str:
    if metric.startswith(("latency", "ttfe")) or metric == "cpu_ms_per_request":
        return "ms"
    return {"throughput_rps": "req/s", "peak_rss_mb": "MB", "error_rate": "", "": ""}.get(
        metric, ""
    )


def _number(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    if metric in ("error_rate", "cache_hit_ratio"):
        return f"{value * 100:.3g} %"
    return f"{value:.4g}"


def commit_url(repo_url: str | None, commit: str) -> str | None:
    base = safe_url(repo_url) if repo_url else None
    return f"{base.rstrip('/')}/commit/{commit}" if base else None


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.05, 1e-9)
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def build_chart(analysis: MetricAnalysis, repo_url: str | None, chart_id: str) -> Chart:
    """Screen coordinates and labels of one chart; no judgement is made here."""
    metric = analysis.spec.name
    rows = analysis.series.rows
    n = len(rows)
    values = list(analysis.values)
    known = [v for v in values if v is not None]
    band_edges = [
        e
        for s in analysis.segments
        if math.isfinite(s.mean)
        for e in (s.mean - BAND_SIGMAS * s.std, s.mean + BAND_SIGMAS * s.std)
    ]
    lo, hi = _scale(min(known + band_edges, default=0.0), max(known + band_edges, default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(i: float) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_of(v: float) -> float:
        return TOP + plot_h * (1 - (v - lo) / (hi - lo))

    points = tuple(
        Point(
            round(x_of(i), 2),
            round(y_of(v), 2),
            r.commit,
            r.commit[:10],
            r.subject,
            _number(v, metric),
            commit_url(repo_url, r.commit),
        )
        for i, (r, v) in enumerate(zip(rows, values, strict=True))
        if v is not None
    )
    bands = []
    for s in analysis.segments:
        if not math.isfinite(s.mean) or s.end <= s.start:
            continue
        # A segment spans from half a step before its first commit to half after its last.
        x0 = max(LEFT, x_of(s.start - 0.5))
        x1 = min(WIDTH - RIGHT, x_of(s.end - 0.5))
        top, bottom = y_of(s.mean + BAND_SIGMAS * s.std), y_of(s.mean - BAND_SIGMAS * s.std)
        poly = f"{x0:.2f},{top:.2f} {x1:.2f},{top:.2f} {x1:.2f},{bottom:.2f} {x0:.2f},{bottom:.2f}"
        bands.append(Band(poly, round(y_of(s.mean), 2), round(x0, 2), round(x1, 2)))
    markers = tuple(
        Marker(round(x_of(cp.index - 0.5), 2), cp.kind, _change(cp), cp.reverted_by is not None)
        for cp in analysis.change_points
    )
    ticks = tuple(
        Tick(round(y_of(lo + (hi - lo) * k / (Y_TICKS - 1)), 2),
             _number(lo + (hi - lo) * k / (Y_TICKS - 1), metric))
        for k in range(Y_TICKS)
    )  # fmt: skip
    subjects = {r.commit: r.subject for r in rows}
    table = tuple(_row(cp, subjects, repo_url, metric) for cp in analysis.change_points)
    key = analysis.key
    return Chart(
        id=chart_id,
        title=_where(metric, key.scenario, key.profile, key.machine_class),
        metric=metric,
        unit=_unit(metric),
        direction="lower is better" if analysis.spec.direction == "lower" else "higher is better",
        points=points,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        bands=tuple(bands),
        markers=markers,
        ticks=ticks,
        change_points=table,
    )


def _where(metric: str, *parts: str) -> str:
    return " \u00b7 ".join((LABELS.get(metric, metric), *parts))


def _change(cp: ChangePoint) -> str:
    if cp.change_percent is None:
        return f"{cp.mean_before:.4g} \u2192 {cp.mean_after:.4g}"
    return f"{cp.change_percent:+.1f} %"


def _row(
    cp: ChangePoint, subjects: dict[str, str], repo_url: str | None, metric: str
) -> ChangePointRow:
    key = cp.key
    return ChangePointRow(
        where=_where(metric, key.scenario, key.profile, key.machine_class),
        commit=cp.commit,
        short=cp.commit[:10],
        url=commit_url(repo_url, cp.commit),
        subject=subjects.get(cp.commit, ""),
        before=_number(cp.mean_before, metric),
        after=_number(cp.mean_after, metric),
        change=_change(cp),
        pvalue=f"{cp.pvalue:.2g}",
        kind=cp.kind,
        reverted_by=cp.reverted_by[:10] if cp.reverted_by else None,
        reverted_url=commit_url(repo_url, cp.reverted_by) if cp.reverted_by else None,
    )


def render_dashboard(
    detection: Detection,
    *,
    repo_url: str | None = None,
    generated_at: datetime | None = None,
    title: str = "Performance history of main",
) -> str:
    charts = [build_chart(a, repo_url, f"chart-{i}") for i, a in enumerate(detection.analyses)]
    return render_template(
        "dashboard.html.j2",
        title=title,
        charts=charts,
        open_regressions=[
            _row(cp, {r.commit: r.subject for r in a.series.rows}, repo_url, cp.metric)
            for a in detection.analyses
            for cp in a.change_points
            if cp.open_regression
        ],
        generated_at=generated_at.isoformat(timespec="seconds") if generated_at else None,
        latest=_latest(detection),
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        sigmas=BAND_SIGMAS,
    )


def _latest(detection: Detection) -> str | None:
    """The newest commit of the history and its time: what the page is up to date with (the
    page depends on its data only, so an unchanged history gives the same bytes)."""
    rows = [r for a in detection.analyses for r in a.series.rows]
    if not rows:
        return None
    newest = max(rows, key=lambda r: r.time)
    return f"{newest.commit[:10]} ({newest.time.isoformat(timespec='minutes')})"


def write_dashboard(out: Path, html: str) -> Path:
    """Write ``index.html`` into ``out`` atomically; the folder is the whole site."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / INDEX
    tmp = out / f".{INDEX}.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
