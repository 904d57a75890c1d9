"""Memory stability: a robust RSS trend per service process after warm-up.

The slope is Theil-Sen (the median of pairwise slopes): a GC pause, an allocator arena
or a single outlier sample cannot move it the way it moves least squares. It is reported
in MB per 10 minutes with a confidence interval, and a process is flagged as leaking when
the whole interval lies above the threshold from ``perf.toml`` (``[sla]
rss_slope_mb_per_10min``) — so that a short, noisy run is not called a leak on one
unlucky sample, and a real leak is.

A short window cannot judge a small slope: over 25 s the 5 MB/10 min threshold is 0.2 MB,
less than the heap a sound service still settles into after warm-up (measured on a clean CI
machine: a sound service grew 0.5 MB in its last 25 s, a slope of +12 MB/10 min with a tight
interval). So a process is also required to have grown, at the interval's low slope, by at
least ``MIN_GROWTH_MB`` over the judged window. With the profiles' 300-second window the
threshold itself (2.5 MB over 5 minutes) is the larger bound, so long runs lose nothing.

=====================================  ==========
interval vs threshold T                 verdict
=====================================  ==========
low > T and low x window >= 2 MB        leaking
high <= T                               stable
otherwise                               stable, but the interval is reported
=====================================  ==========
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from ci.errors import RunError
from ci.results import MemoryGrowth, ResourceSample

TEN_MINUTES_S = 600.0
MIN_SAMPLES = 8
MIN_GROWTH_MB = 2.0  # the least growth over the judged window that can be called a leak


@dataclass(frozen=True, slots=True)
class MemoryTrend:
    pid: int
    role: str
    samples: int
    start_rss_mb: float
    end_rss_mb: float
    slope_mb_per_10min: float
    ci_low: float
    ci_high: float
    leaking: bool


def rss_trend(
    times_s: Sequence[float] | npt.NDArray[np.float64],
    rss_mb: Sequence[float] | npt.NDArray[np.float64],
    threshold_mb_per_10min: float,
    *,
    confidence: float = 0.95,
    pid: int = 0,
    role: str = "service",
) -> MemoryTrend:
    """Theil-Sen slope of RSS over time, scaled to MB per 10 minutes."""
    if len(times_s) != len(rss_mb):
        raise RunError(f"{len(times_s)} times but {len(rss_mb)} RSS samples for pid {pid}")
    if len(times_s) < MIN_SAMPLES:
        raise RunError(
            f"pid {pid}: {len(times_s)} RSS samples after warm-up; at least {MIN_SAMPLES} "
            "are needed for a trend (run longer)"
        )
    t = np.asarray(times_s, dtype=np.float64)
    y = np.asarray(rss_mb, dtype=np.float64)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise RunError(f"pid {pid}: non-finite RSS sample")
    if float(np.ptp(t)) <= 0:
        raise RunError(f"pid {pid}: all RSS samples share one timestamp")
    slope, _intercept, low, high = stats.theilslopes(y, t, alpha=confidence)
    scale = TEN_MINUTES_S
    lo, hi = float(low) * scale, float(high) * scale
    least_growth_mb = float(low) * float(np.ptp(t))
    return MemoryTrend(
        pid=pid,
        role=role,
        samples=len(t),
        start_rss_mb=float(np.median(y[: max(1, len(y) // 10)])),
        end_rss_mb=float(np.median(y[-max(1, len(y) // 10) :])),
        slope_mb_per_10min=float(slope) * scale,
        ci_low=lo,
        ci_high=hi,
        leaking=lo > threshold_mb_per_10min and least_growth_mb >= MIN_GROWTH_MB,
    )


def trends_by_process(
    samples: Sequence[ResourceSample],
    threshold_mb_per_10min: float,
    *,
    warmup_s: float = 0.0,
    roles: tuple[str, ...] = ("service", "worker"),
) -> list[MemoryTrend]:
    """One trend per service process, from the samples taken after ``warmup_s``."""
    series: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        if s.role in roles and s.t >= warmup_s:
            series[(s.pid, s.role)].append((s.t, s.rss_mb))
    trends = []
    for (pid, role), points in sorted(series.items()):
        if len(points) < MIN_SAMPLES:
            continue
        t, y = zip(*points, strict=True)
        trends.append(rss_trend(t, y, threshold_mb_per_10min, pid=pid, role=role))
    return trends


def memory_growth(trends: Sequence[MemoryTrend]) -> MemoryGrowth | None:
    """The results-file summary: the worst process decides."""
    if not trends:
        return None
    worst = max(trends, key=lambda tr: (tr.leaking, tr.ci_low))
    return MemoryGrowth(
        rss_slope_mb_per_10min=worst.slope_mb_per_10min,
        ci_low=worst.ci_low,
        ci_high=worst.ci_high,
        leaking=any(tr.leaking for tr in trends),
    )
