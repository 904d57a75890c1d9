"""Calibration figures of the gate: false-alarm and detection rates, with exact intervals.

A calibration is many gate verdicts of two kinds: A/A (both sides the same revision: every
FAIL is a false alarm) and slowed (the candidate burns a known extra share of CPU per
search: every FAIL is a detection). Rates carry Clopper-Pearson intervals (exact binomial,
two-sided), so "0 of 20" reads as what it is: a false-alarm rate below 17 % at 95 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of a binomial proportion ``k / n`` (scipy's)."""
    assert n > 0, f"n={n}: need at least one trial"
    assert 0 <= k <= n, f"k={k}, n={n}: need 0 <= k <= n"
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True, slots=True)
class Rate:
    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0


def rate(decisions: Sequence[str], hit: str = "fail", confidence: float = 0.95) -> Rate | None:
    """Share of ``decisions`` equal to ``hit`` with its interval (None: no decisions)."""
    n = len(decisions)
    if n == 0:
        return None
    k = sum(d == hit for d in decisions)
    lo, hi = clopper_pearson(k, n, confidence)
    return Rate(k, n, lo, hi)
