"""Clopper-Pearson intervals: exact, and matching the textbook values."""

from __future__ import annotations

import pytest

from ci.judge.calibration import clopper_pearson, rate


def test_zero_of_twenty() -> None:
    lo, hi = clopper_pearson(0, 20)
    assert lo == 0.0
    assert hi == pytest.approx(0.1684, abs=1e-4)  # the "rule of three"'s exact cousin


def test_all_of_twenty() -> None:
    lo, hi = clopper_pearson(20, 20)
    assert lo == pytest.approx(0.8316, abs=1e-4)
    assert hi == 1.0


def test_middle() -> None:
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.1871, abs=1e-4)
    assert hi == pytest.approx(0.8129, abs=1e-4)


def test_rate_counts_the_hits() -> None:
    r = rate(["pass", "fail", "pass", "inconclusive"])
    assert r is not None
    assert (r.k, r.n, r.value) == (1, 4, 0.25)
    assert rate([]) is None
