"""ci.history.tracking: the wanted state of each metric's regression issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ci.history.detect import TrackedMetric, detect
from ci.history.store import Row, Series, SeriesKey
from ci.history.tracking import marker, plan_issues, tracking_id
from ci.settings.history import HistoryConfig
from tests.ci.history.synthetic import levels, sha

KEY = SeriesKey("pr", "local-2cpu", "arrival_rate")
P95 = TrackedMetric("latency_p95", "lower")


def _series(steps: list[tuple[int, float]], seed: int = 3) -> Series:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    rows = tuple(
        Row(t0 + timedelta(hours=i), sha(i + 1), "", "r",
            {"latency_p95": 100 * lv * (1 + 0.02 * float(rng.standard_normal()))})
        for i, lv in enumerate(levels(40, steps))
    )  # fmt: skip
    return Series(KEY, ("latency_p95",), rows)


def test_an_open_regression_wants_an_open_issue() -> None:
    (t,) = plan_issues(detect([_series([(25, 1.12)])], [P95], HistoryConfig()))
    assert t.state == "open"
    assert [cp.commit for cp in t.regressions] == [sha(25)]
    assert t.id == tracking_id(KEY, "latency_p95")


def test_a_reverted_regression_wants_the_issue_closed_naming_the_revert() -> None:
    (t,) = plan_issues(detect([_series([(15, 1.15), (30, 1 / 1.15)])], [P95], HistoryConfig()))
    assert t.state == "closed"
    assert t.reverted_by == sha(30)


def test_no_regression_wants_no_open_issue() -> None:
    (t,) = plan_issues(detect([_series([])], [P95], HistoryConfig()))
    assert (t.state, t.regressions, t.reverted_by) == ("closed", (), None)


def test_the_marker_cannot_be_broken_out_of() -> None:
    hostile = SeriesKey("pr", "a--b", "x--y")
    tid = tracking_id(hostile, "latency_p95")
    assert tid.startswith("perfci-history-regression:")
    assert "--" not in tid.removeprefix("perfci-history-regression:")
    assert marker(tid) == f"<!-- {tid} -->"
    assert tracking_id(hostile, "latency_p99") != tid
