"""Change points in the history of main, found by Apache Otava (E-divisive with a t-test merge).

Otava finds where the level of a series moves; this module only says what each move means:

=============  ==================================================================
kind           when (``worse`` = the change in the metric's worse direction)
=============  ==================================================================
regression     ``worse`` beyond the metric's threshold
improvement    ``-worse`` beyond the threshold
change         a move Otava is sure of, smaller than the threshold either way
=============  ==================================================================

Ratio metrics compare the segment means relatively (``after / before - 1``, the threshold is
``[history] regression_threshold``); absolute metrics (an error rate, whose level is often
0) compare the difference with their ``[gate]`` ``fail_threshold``. A regression is *reverted* by
the first later change point after which the level is no longer worse than the level
before the regression by more than the threshold.

A change point's ``commit`` is the first commit measured at the new level (Otava's index:
``series[index:]`` is the part after the change), the commit that caused it unless the
history skips commits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from otava.series import AnalysisOptions, Metric
from otava.series import Series as OtavaSeries

from ci.history.store import Series, SeriesKey
from ci.judge.metrics import EXTRACTORS
from ci.settings import PerfConfig
from ci.settings.gate import Direction, Mode
from ci.settings.history import HistoryConfig

Kind = Literal["regression", "improvement", "change"]


@dataclass(frozen=True, slots=True)
class TrackedMetric:
    """A metric the history analyses: which way is better, and its mode and threshold.

    Built from the PR gate's primary metrics (:func:`primary_metrics`); a ratio metric is
    judged against ``[history] regression_threshold``, an absolute one against its own
    ``fail_threshold``.
    """

    name: str
    direction: Direction
    mode: Mode = "ratio"
    fail_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class ChangePoint:
    key: SeriesKey
    metric: str
    index: int  # 0-based row of ``commit``
    commit: str  # the first commit at the new level
    previous_commit: str  # the last commit at the old level
    mean_before: float
    mean_after: float
    change_percent: float | None  # relative change in %; None when the level before is 0
    pvalue: float
    kind: Kind
    reverted_by: str | None = None  # regressions: the commit that brought the level back

    @property
    def open_regression(self) -> bool:
        return self.kind == "regression" and self.reverted_by is None

    def to_json(self) -> dict[str, object]:
        return {
            "profile": self.key.profile,
            "machine_class": self.key.machine_class,
            "scenario": self.key.scenario,
            "metric": self.metric,
            "commit": self.commit,
            "previous_commit": self.previous_commit,
            "index": self.index,
            "mean_before": self.mean_before,
            "mean_after": self.mean_after,
            "change_percent": self.change_percent,
            "pvalue": self.pvalue,
            "kind": self.kind,
            "reverted_by": self.reverted_by,
        }


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows ``start`` up to (not including) ``end`` between change points."""

    start: int
    end: int
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class MetricAnalysis:
    """One metric of one series, with what Otava found in it (what the dashboard draws)."""

    series: Series
    spec: TrackedMetric
    threshold: float
    values: tuple[float | None, ...]
    change_points: tuple[ChangePoint, ...]
    segments: tuple[Segment, ...]

    @property
    def key(self) -> SeriesKey:
        return self.series.key


@dataclass(frozen=True, slots=True)
class Detection:
    analyses: tuple[MetricAnalysis, ...]

    @property
    def change_points(self) -> tuple[ChangePoint, ...]:
        return tuple(cp for a in self.analyses for cp in a.change_points)

    @property
    def open_regressions(self) -> tuple[ChangePoint, ...]:
        return tuple(cp for cp in self.change_points if cp.open_regression)


def primary_metrics(perf: PerfConfig) -> tuple[TrackedMetric, ...]:
    """The metrics a history analyses: the PR gate's primary metrics (perf.toml [gate]) that
    a run's results file carries (the windows' own figures, such as the tail share, are not)."""
    return tuple(
        TrackedMetric(m.name, m.direction, m.mode, fail_threshold=m.fail_threshold)
        for m in perf.gate.rule.metrics
        if m.name in EXTRACTORS
    )


def metric_threshold(spec: TrackedMetric, history: HistoryConfig) -> float:
    """A ratio metric's relative threshold is the history's; an absolute one keeps its own."""
    if spec.mode == "absolute":
        return spec.fail_threshold if spec.fail_threshold is not None else 0.0
    return history.regression_threshold


def worse_by(spec: TrackedMetric, before: float, after: float) -> float:
    """How much worse ``after`` is than ``before``: relative (ratio) or a difference."""
    sign = 1.0 if spec.direction == "lower" else -1.0
    if spec.mode == "absolute":
        return sign * (after - before)
    if before == 0:
        return 0.0 if after == 0 else sign * math.copysign(math.inf, after)
    return sign * (after / abs(before) - 1.0)


def analyse_metric(series: Series, spec: TrackedMetric, history: HistoryConfig) -> MetricAnalysis:
    """Otava on one metric of one series; fewer than 3 values give no change point."""
    values = tuple(series.values(spec.name))
    threshold = metric_threshold(spec, history)
    present = [v for v in values if v is not None]
    if len(present) < 3:
        segments: tuple[Segment, ...] = (_segment(0, len(values), values),) if present else ()
        return MetricAnalysis(series, spec, threshold, values, (), segments)
    options = AnalysisOptions()
    options.window_len = history.window_len
    options.max_pvalue = history.max_pvalue
    options.min_magnitude = history.min_magnitude
    otava = OtavaSeries(
        series.key.name,
        None,
        time=[int(r.time.timestamp()) for r in series.rows],
        # Otava's direction: 1 when higher is better, -1 when lower is.
        metrics={spec.name: Metric(1 if spec.direction == "higher" else -1)},
        data={spec.name: list(values)},
        attributes={"commit": list(series.commits)},
    )
    found = otava.analyze(options).change_points.get(spec.name, [])
    commits = series.commits
    points: list[ChangePoint] = []
    for cp in sorted(found, key=lambda c: int(c.index)):
        index = int(cp.index)
        before, after = float(cp.stats.mean_1), float(cp.stats.mean_2)
        worse = worse_by(spec, before, after)
        kind: Kind = (
            "regression" if worse > threshold else "improvement" if -worse > threshold else "change"
        )
        points.append(
            ChangePoint(
                key=series.key,
                metric=spec.name,
                index=index,
                commit=commits[index],
                previous_commit=commits[index - 1],
                mean_before=before,
                mean_after=after,
                change_percent=None if before == 0 else 100.0 * (after / before - 1.0),
                pvalue=float(cp.stats.pvalue),
                kind=kind,
            )
        )
    points = _mark_reverted(points, spec, threshold)
    bounds = [0, *(p.index for p in points), len(values)]
    segments = tuple(_segment(a, b, values) for a, b in itertools.pairwise(bounds))
    return MetricAnalysis(series, spec, threshold, values, tuple(points), segments)


def _mark_reverted(
    points: Sequence[ChangePoint], spec: TrackedMetric, threshold: float
) -> list[ChangePoint]:
    out = list(points)
    for i, cp in enumerate(out):
        if cp.kind != "regression":
            continue
        for later in out[i + 1 :]:
            if worse_by(spec, cp.mean_before, later.mean_after) <= threshold:
                out[i] = replace(cp, reverted_by=later.commit)
                break
    return out


def _segment(start: int, end: int, values: Sequence[float | None]) -> Segment:
    part = np.array([v for v in values[start:end] if v is not None], dtype=np.float64)
    if part.size == 0:
        return Segment(start, end, math.nan, math.nan)
    return Segment(start, end, float(part.mean()), float(part.std()))


def detect(
    series: Sequence[Series], metrics: Sequence[TrackedMetric], history: HistoryConfig
) -> Detection:
    """Every tracked scenario's series, every primary metric it holds."""
    analyses = []
    for s in sorted(series, key=lambda s: s.key):
        if s.key.scenario not in history.scenarios:
            continue
        for spec in metrics:
            if spec.name in s.metrics:
                analyses.append(analyse_metric(s, spec, history))
    return Detection(tuple(analyses))
