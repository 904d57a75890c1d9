"""The spread between builds that benchmarks/recall_builds.py reports, on known recalls."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.recall_builds import pair_spread


def test_builds_that_differ_query_by_query_spread_as_the_paired_test_assumes() -> None:
    rng = np.random.default_rng(1)
    # 40 builds; each query found 9 or 10 of 10 at random: independent per query and build
    per = 0.9 + 0.1 * rng.integers(0, 2, size=(40, 600)).astype(np.float64)
    sd, se = pair_spread(per, 600)
    assert se == pytest.approx(0.1 * np.sqrt(0.5) / np.sqrt(600), rel=0.05)
    assert sd == pytest.approx(se, rel=0.25)
    assert pair_spread(per, 120)[1] > se  # fewer queries, a wider spread


def test_identical_builds_do_not_spread() -> None:
    per = np.tile(np.linspace(0.5, 1.0, 300), (3, 1))
    assert pair_spread(per, 300) == (0.0, 0.0)


def test_too_few_builds_or_queries_are_refused() -> None:
    with pytest.raises(ValueError, match="need 2\\+ builds"):
        pair_spread(np.ones((1, 10)), 10)
    with pytest.raises(ValueError, match="2 <= n <= 10"):
        pair_spread(np.ones((3, 10)), 11)
