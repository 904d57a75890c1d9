"""Estimators, tests and the bootstrap: pure functions on per-run effect values.

An *effect* is oriented so that a positive value is worse (see :mod:`ci.judge.compare`).
Paired: the Hodges-Lehmann pseudo-median of the effects, a percentile bootstrap over pairs,
the one-sided Wilcoxon signed-rank test. Unpaired: the difference of the medians, each side
resampled independently, the one-sided Mann-Whitney U test. ``lo``/``hi`` are one-sided
bootstrap bounds, each at ``confidence``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from ci.settings import CompareConfig

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Estimate:
    est: float
    lo: float | None
    hi: float | None
    p: float | None


def hodges_lehmann(x: FloatArray) -> FloatArray:
    """Pseudo-median of each row of ``x`` (2-D: rows are samples)."""
    i, j = np.triu_indices(x.shape[1])
    # asarray: numpy's stubs widen float64 arithmetic to floating[Any]; no copy is made.
    walsh = np.asarray((x[:, i] + x[:, j]) * 0.5, dtype=np.float64)
    # An in-place sort and a pick is about twice as fast as np.median on short rows.
    walsh.sort(axis=1)
    m = walsh.shape[1]
    if m % 2:
        return walsh[:, m // 2]
    return np.asarray(0.5 * (walsh[:, m // 2 - 1] + walsh[:, m // 2]), dtype=np.float64)


def bootstrap(
    statistic: Callable[[FloatArray], FloatArray],
    x: FloatArray,
    resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Bootstrap replicates of ``statistic`` over the rows of resampled ``x``, in chunks
    that keep memory bounded (Walsh averages grow as n**2)."""
    n = x.shape[0]
    width = max(n * (n + 1) // 2, n)
    chunk = max(1, 2_000_000 // width)
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = statistic(x[idx])
    return out


def interval(replicates: FloatArray, confidence: float) -> tuple[float, float]:
    """One-sided lower and upper bounds, each at ``confidence`` (see the module docstring)."""
    lo, hi = np.quantile(replicates, [1.0 - confidence, confidence])
    return float(lo), float(hi)


def wilcoxon_p(effects: FloatArray) -> float:
    """One-sided Wilcoxon signed-rank p, H1: effects > 0 (candidate worse)."""
    if not np.any(effects != 0):
        return 1.0  # all pairs identical: no change, not an error
    result = stats.wilcoxon(effects, alternative="greater", zero_method="wilcox")
    p = float(result.pvalue)
    if not math.isfinite(p):
        raise ValueError(f"Wilcoxon test returned p = {p}")
    return p


def mannwhitney_p(base: FloatArray, cand: FloatArray) -> float:
    """One-sided Mann-Whitney U p, H1: candidate values larger (worse)."""
    result = stats.mannwhitneyu(cand, base, alternative="greater")
    p = float(result.pvalue)
    if not math.isfinite(p):
        raise ValueError(f"Mann-Whitney test returned p = {p}")
    return p


def paired_estimate(
    effects: FloatArray, config: CompareConfig, rng: np.random.Generator
) -> Estimate:
    est = float(hodges_lehmann(effects[np.newaxis, :])[0])
    if effects.size < 2:
        return Estimate(est, None, None, None)
    reps = bootstrap(hodges_lehmann, effects, config.bootstrap_resamples, rng)
    lo, hi = interval(reps, config.confidence)
    return Estimate(est, lo, hi, wilcoxon_p(effects))


def _row_median(x: FloatArray) -> FloatArray:
    return np.asarray(np.median(x, axis=1), dtype=np.float64)


def unpaired_estimate(
    base: FloatArray, cand: FloatArray, config: CompareConfig, rng: np.random.Generator
) -> Estimate:
    est = float(np.median(cand) - np.median(base))
    if base.size < 2 or cand.size < 2:
        return Estimate(est, None, None, None)
    reps = bootstrap(_row_median, cand, config.bootstrap_resamples, rng) - bootstrap(
        _row_median, base, config.bootstrap_resamples, rng
    )
    lo, hi = interval(np.asarray(reps, dtype=np.float64), config.confidence)
    return Estimate(est, lo, hi, mannwhitney_p(base, cand))
