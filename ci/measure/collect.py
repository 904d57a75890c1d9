"""Turn raw tool outputs into the versioned results model (ci.results).

Percentiles are computed exactly from every per-request sample (k6 CSV rows, vegeta
encoded results); k6's summary export is the fallback when no raw samples exist.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from ci.errors import RunError
from ci.measure.k6 import K6Summary, RawSamples
from ci.measure.vegeta import VegetaHit
from ci.results import (
    CacheFigures,
    DatabaseFigures,
    LatencyHistogram,
    LatencySummary,
    Machine,
    Resources,
    ScenarioResult,
    ThresholdOutcome,
    TimePoint,
)
from ci.settings import SlaConfig


def k6_percentile(ordered: npt.NDArray[np.float64], pct: float) -> float:
    """k6's trend percentile of sorted ``ordered``: ``v[floor(i)] + (v[ceil(i)] - v[floor(i)])
    * frac(i)`` at ``i = pct * (n - 1)`` (``pct`` in 0..1); 0 for no samples."""
    n = len(ordered)
    if n == 0:
        return 0.0
    if n == 1:
        return float(ordered[0])
    i = pct * (n - 1.0)
    lo, hi = float(ordered[math.floor(i)]), float(ordered[math.ceil(i)])
    return lo + (hi - lo) * (i - math.floor(i))


def latency_summary(values: Sequence[float]) -> LatencySummary | None:
    """Exact percentiles (:func:`k6_percentile`); None when empty."""
    if not values:
        return None
    arr = np.sort(np.asarray(values, dtype=np.float64))
    p50, p90, p95, p99, p999 = (k6_percentile(arr, q / 100) for q in (50, 90, 95, 99, 99.9))
    return LatencySummary(
        p50=round(float(p50), 4),
        p90=round(float(p90), 4),
        p95=round(float(p95), 4),
        p99=round(float(p99), 4),
        p999=round(float(p999), 4),
        maximum=round(float(arr.max()), 4),
        minimum=round(float(arr.min()), 4),
        mean=round(min(max(float(arr.mean()), float(arr.min())), float(arr.max())), 4),
    )


HISTOGRAM_BINS_PER_DECADE = 10
HISTOGRAM_FLOOR_MS = 0.01  # faster than this counts in the first bin


def latency_histogram(values: Sequence[float]) -> LatencyHistogram | None:
    """Every sample counted in log-spaced bins, 10 per decade (edges 10**(k/10) ms), from
    the bin of the fastest request to the bin of the slowest; None when empty."""
    if not values:
        return None
    arr = np.maximum(np.asarray(values, dtype=np.float64), HISTOGRAM_FLOOR_MS)
    per = HISTOGRAM_BINS_PER_DECADE
    k = np.floor(np.log10(arr) * per + 1e-9).astype(np.int64)
    lo, hi = int(k.min()), int(k.max())
    counts = np.bincount(k - lo, minlength=hi - lo + 1)
    edges = tuple(float(f"{10 ** (j / per):.6g}") for j in range(lo, hi + 2))
    return LatencyHistogram(edges, tuple(int(c) for c in counts))


def timeseries(
    durations: Sequence[tuple[float, float]], failures: Sequence[tuple[float, bool]]
) -> tuple[TimePoint, ...]:
    """Per-second points (t from the first sample): rps, p50/p95/p99 and error count."""
    if not durations:
        return ()
    t0 = math.floor(min(t for t, _ in durations))
    by_second: dict[int, list[float]] = defaultdict(list)
    for t, value in durations:
        by_second[int(math.floor(t) - t0)].append(value)
    errors: dict[int, int] = defaultdict(int)
    for t, failed in failures:
        if failed:
            errors[int(math.floor(t) - t0)] += 1
    points = []
    for second in range(max(by_second) + 1):
        values = by_second.get(second, [])
        if values:
            p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
        else:
            p50 = p95 = p99 = 0.0
        points.append(
            TimePoint(
                t=float(second),
                rps=float(len(values)),
                p50_ms=round(float(p50), 4),
                p95_ms=round(float(p95), 4),
                p99_ms=round(float(p99), 4),
                errors=errors.get(second, 0),
            )
        )
    return tuple(points)


def _num(data: Mapping[str, Any], key: str) -> float:
    """A counter from /v1/stats: a number, or a mapping of numbers (per cache level) summed."""
    value = data.get(key)
    if isinstance(value, Mapping):
        return float(sum(v for v in value.values() if isinstance(v, int | float)))
    return float(value) if isinstance(value, int | float) else 0.0


def _hits_misses(cache: Mapping[str, Any]) -> tuple[float, float]:
    """Answers served from a cache level vs computed.

    ``sources`` (l1/redis/computed) counts each search once; without it, ``hits`` and
    ``misses`` are used as given (summed over levels when they are per level).
    """
    sources = cache.get("sources")
    if isinstance(sources, Mapping):
        return _num(sources, "l1") + _num(sources, "redis"), _num(sources, "computed")
    return _num(cache, "hits"), _num(cache, "misses")


def cache_figures(before: Mapping[str, Any], after: Mapping[str, Any]) -> CacheFigures:
    """Deltas of ``/v1/stats`` over a scenario.

    Without a ``cache`` object (a service without a cache) hit_ratio is None and
    hits/misses/coalesced are 0; ``db_searches`` is always the delta.
    """
    db = max(0, round(_num(after, "db_searches") - _num(before, "db_searches")))
    ca = after.get("cache")
    if not isinstance(ca, Mapping):
        return CacheFigures(hit_ratio=None, hits=0, misses=0, db_searches=db, coalesced=0)
    cb = before.get("cache")
    cb = cb if isinstance(cb, Mapping) else {}
    (hits_a, misses_a), (hits_b, misses_b) = _hits_misses(ca), _hits_misses(cb)
    hits = max(0, round(hits_a - hits_b))
    misses = max(0, round(misses_a - misses_b))
    coalesced = max(0, round(_num(ca, "coalesced") - _num(cb, "coalesced")))
    ratio = round(hits / (hits + misses), 4) if hits + misses else None
    return CacheFigures(
        hit_ratio=ratio, hits=hits, misses=misses, db_searches=db, coalesced=coalesced
    )


def scenario_from_k6(
    name: str,
    summary: K6Summary,
    raw: RawSamples | None,
    *,
    started_at: str,
    label: str | None,
    tool: str = "k6",
    cache: CacheFigures | None,
    database: DatabaseFigures | None,
    resources: Resources,
) -> ScenarioResult:
    if raw is not None and raw.durations:
        latency = latency_summary([v for _, v in raw.durations])
        ttfe = latency_summary(raw.ttfe) or summary.ttfe_ms
        requests = len(raw.durations)
        failed = sum(1 for _, v in raw.failed if v > 0)
        error_rate = failed / len(raw.failed) if raw.failed else summary.failed_rate
        series = timeseries(
            [(float(t), v) for t, v in raw.durations], [(float(t), v > 0) for t, v in raw.failed]
        )
        histogram = latency_histogram([v for _, v in raw.durations])
    else:
        latency, ttfe = summary.latency_ms, summary.ttfe_ms
        requests, error_rate, series = summary.requests, summary.failed_rate, ()
        histogram = None
    if latency is None:
        raise RunError(f"scenario {name}: k6 recorded no HTTP requests")
    duration = summary.duration_s
    return ScenarioResult(
        name=name,
        tool=tool,
        label=label,
        started_at=started_at,
        duration_s=round(duration, 3),
        requests=requests,
        throughput_rps=round(requests / duration, 3) if duration > 0 else 0.0,
        error_rate=min(1.0, max(0.0, error_rate)),
        latency_ms=latency,
        ttfe_ms=ttfe,
        dropped_iterations=summary.dropped_iterations,
        thresholds=summary.thresholds,
        cache=cache,
        database=database,
        resources=resources,
        timeseries=series,
        latency_histogram=histogram,
    )


def sla_thresholds(
    latency: LatencySummary, error_rate: float, sla: SlaConfig
) -> tuple[ThresholdOutcome, ...]:
    """The SLA of the k6 scripts, applied to a tool without thresholds of its own (vegeta)."""
    p95, p99, errors = sla.p95_ms, sla.p99_ms, sla.error_rate
    return (
        ThresholdOutcome("http_req_duration", f"p(95)<{p95:g}", latency.p95 < p95),
        ThresholdOutcome("http_req_duration", f"p(99)<{p99:g}", latency.p99 < p99),
        ThresholdOutcome("http_req_failed", f"rate<{errors:g}", error_rate < errors),
    )


def scenario_from_vegeta(
    name: str,
    hits: Sequence[VegetaHit],
    *,
    started_at: str,
    cache: CacheFigures | None,
    database: DatabaseFigures | None,
    resources: Resources,
    sla: SlaConfig,
) -> ScenarioResult:
    """Exact figures from ``vegeta encode`` results (its report's percentiles are estimates)."""
    latency = latency_summary([h.latency_ms for h in hits])
    if latency is None:
        raise RunError(f"scenario {name}: vegeta recorded no requests")
    failed = [not (200 <= h.code < 400) or bool(h.error) for h in hits]
    error_rate = sum(failed) / len(hits)
    first = min(h.timestamp for h in hits)
    last = max(h.timestamp + h.latency_ms / 1000 for h in hits)
    duration = max(last - first, 1e-9)
    return ScenarioResult(
        name=name,
        tool="vegeta",
        label=None,
        started_at=started_at,
        duration_s=round(duration, 3),
        requests=len(hits),
        throughput_rps=round(len(hits) / duration, 3),
        error_rate=error_rate,
        latency_ms=latency,
        ttfe_ms=None,
        dropped_iterations=0,
        thresholds=sla_thresholds(latency, error_rate, sla),
        cache=cache,
        database=database,
        resources=resources,
        timeseries=timeseries(
            [(h.timestamp, h.latency_ms) for h in hits],
            [(h.timestamp, f) for h, f in zip(hits, failed, strict=True)],
        ),
        latency_histogram=latency_histogram([h.latency_ms for h in hits]),
    )


def machine() -> Machine:
    cpus = os.cpu_count() or 1
    memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    return Machine(
        machine_class=os.environ.get("PERFCI_MACHINE_CLASS") or f"local-{cpus}cpu",
        cpus=cpus,
        memory_gb=memory_gb,
        platform=platform.platform(),
        python=platform.python_version(),
    )


def git_info(root: Path) -> tuple[str | None, str | None]:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
            )
        except OSError:
            return None
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    return git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")
