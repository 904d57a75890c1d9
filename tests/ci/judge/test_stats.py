from __future__ import annotations

import numpy as np
import pytest

from ci.judge.stats import hodges_lehmann, interval, mannwhitney_p, paired_estimate, wilcoxon_p
from ci.settings import CompareConfig


def test_hodges_lehmann_is_the_median_of_walsh_averages() -> None:
    x = np.array([[1.0, 2.0, 10.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    # Walsh averages of (1, 2, 10): 1, 1.5, 5.5, 2, 6, 10 -> median (2 + 5.5) / 2
    assert hodges_lehmann(x).tolist() == [3.75, 0.0, 2.0]


def test_identical_pairs_give_p_one_not_an_error() -> None:
    assert wilcoxon_p(np.zeros(6)) == 1.0
    assert wilcoxon_p(np.full(6, 0.1)) < 0.05


def test_mannwhitney_one_sided() -> None:
    base = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    worse = np.array([2.0, 2.1, 1.9, 2.05, 1.95])
    assert mannwhitney_p(base, worse) < 0.05
    assert mannwhitney_p(worse, base) > 0.5


def test_paired_estimate_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    effects = np.log(1.1) + rng.normal(0.0, 0.02, 10)
    e = paired_estimate(effects, CompareConfig(bootstrap_resamples=2000), rng)
    assert e.lo is not None
    assert e.hi is not None
    assert e.lo < e.est < e.hi
    assert e.est == pytest.approx(np.log(1.1), abs=0.02)
    one = paired_estimate(effects[:1], CompareConfig(), rng)
    assert (one.lo, one.hi, one.p) == (None, None, None)


def test_interval_bounds_are_one_sided_quantiles() -> None:
    lo, hi = interval(np.arange(101, dtype=np.float64), 0.95)
    assert lo == pytest.approx(5.0)
    assert hi == pytest.approx(95.0)
