"""Tables of ``perfci sweep capacity``: exact text."""

from __future__ import annotations

import math

from ci.experiments.capacity import CapacityPoint, CapacityRow, Spread
from ci.render.capacity import capacity_table, steps_table


def test_capacity_table_shows_medians_spread_and_ratio() -> None:
    rows = [
        CapacityRow(
            "service", "unique", 3, Spread(325, 300, 350), Spread(8.25, 8.0, 9.0),
            Spread(12.0, 12.0, 12.0), Spread(2.1667, 2.0, 2.5),
        ),
        CapacityRow(
            "reference", "unique", 3, Spread(150, 150, 150), Spread(10.0, 9.5, 11.0),
            Spread(14.0, 13.0, 15.0), None,
        ),
        CapacityRow(
            "service", "zipf", 1, Spread(0, 0, 0), Spread(math.nan, math.nan, math.nan),
            Spread(math.nan, math.nan, math.nan), None,
        ),
    ]  # fmt: skip
    assert capacity_table(rows, 50, 100.0).splitlines() == [
        "| query mix | service | rounds | capacity req/s (p99 <= 100 ms, no errors) "
        "| x reference | p50 ms at 50/s | p95 ms at 50/s |",
        "|---|---|---:|---:|---:|---:|---:|",
        "| all-unique (every request a miss) | service | 3 | 325 [300-350] | 2.17 [2.00-2.50] "
        "| 8.2 [8.0-9.0] | 12.0 |",
        "| all-unique (every request a miss) | reference | 3 | 150 | - | 10.0 [9.5-11.0] "
        "| 14.0 [13.0-15.0] |",
        "| Zipf query log | service | 1 | 0 | - | - | - |",
    ]


def test_steps_table_lists_every_step_with_its_verdict() -> None:
    points = [
        CapacityPoint("service", "zipf", 1, 1, 50, 500, 50.0, 3.25, 9.0, 12.5, 0.0, 0, False, True),
        CapacityPoint(
            "reference", "zipf", 1, 2, 400, 900, 90.0, 800.0, 2000.0, math.inf, 0.01, 12, True,
            False,
        ),
    ]  # fmt: skip
    assert steps_table(points).splitlines()[2:] == [
        "| 1 | zipf | service | 1 | 50 | 50 | 3.2 | 9.0 | 12.5 | 0.00 % | 0 | pass |",
        "| 1 | zipf | reference | 2 | 400 | - | 800.0 | 2000.0 | inf | 1.00 % | 12 "
        "| fail, stopped early |",
    ]
