"""Theil-Sen RSS trends: a leak is flagged, noise and one-off jumps are not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ci.errors import RunError
from ci.measure.memory import memory_growth, rss_trend, trends_by_process
from ci.results import ResourceSample


def _series(
    slope_mb_per_s: float, seconds: int = 120, noise: float = 0.3, seed: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    t = np.arange(seconds, dtype=np.float64)
    y = np.asarray(200 + slope_mb_per_s * t + rng.normal(0, noise, seconds), dtype=np.float64)
    return t, y


def test_flat_noisy_rss_is_stable() -> None:
    t, y = _series(0.0)
    trend = rss_trend(t, y, threshold_mb_per_10min=5.0)
    assert not trend.leaking
    assert trend.ci_low <= 0 <= trend.ci_high


def test_growing_rss_is_a_leak() -> None:
    t, y = _series(0.05)  # 30 MB per 10 minutes
    trend = rss_trend(t, y, threshold_mb_per_10min=5.0)
    assert trend.leaking
    assert 25 < trend.slope_mb_per_10min < 35


def test_one_jump_is_not_a_leak() -> None:
    """A step (an arena grabbed once, a cache filled) must not read as steady growth."""
    t, y = _series(0.0)
    y[5:] += 40  # one 40 MB jump early in the run
    trend = rss_trend(t, y, threshold_mb_per_10min=5.0)
    assert not trend.leaking


def test_a_short_window_needs_real_growth_not_just_a_steep_slope() -> None:
    """0.5 MB in 25 s (the settling a sound service showed on CI) is +12 MB/10 min, but not
    a leak; the same slope held for 5 minutes (6 MB) is."""
    t, y = _series(0.02, seconds=25, noise=0.01)
    short = rss_trend(t, y, threshold_mb_per_10min=5.0)
    assert short.ci_low > 5.0  # the slope alone would have flagged it
    assert not short.leaking
    t, y = _series(0.02, seconds=300, noise=0.01)
    assert rss_trend(t, y, threshold_mb_per_10min=5.0).leaking


def test_too_few_samples_is_an_error() -> None:
    with pytest.raises(RunError, match="at least 8"):
        rss_trend([0, 1, 2], [1, 2, 3], 5.0)


def test_trends_per_process_skip_warmup_and_other_roles() -> None:
    samples = []
    for i in range(60):
        samples.append(
            ResourceSample(
                t=float(i),
                pid=1,
                role="worker",
                rss_mb=100 + 0.1 * i,
                cpu_percent=1.0,
                connections=1,
            )
        )
        samples.append(
            ResourceSample(
                t=float(i), pid=2, role="worker", rss_mb=100.0, cpu_percent=1.0, connections=1
            )
        )
        samples.append(
            ResourceSample(
                t=float(i), pid=3, role="postgres", rss_mb=100 + i, cpu_percent=1.0, connections=1
            )
        )
    trends = trends_by_process(samples, 5.0, warmup_s=10)
    assert [(tr.pid, tr.leaking) for tr in trends] == [(1, True), (2, False)]
    assert all(tr.samples == 50 for tr in trends)
    growth = memory_growth(trends)
    assert growth is not None
    assert growth.leaking
    assert memory_growth([]) is None
