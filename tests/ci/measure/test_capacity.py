"""One capacity step: the rule, the k6 environment, and the summary-export parsing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from ci.errors import RunError
from ci.measure.capacity import StepSpec, judge, parse_step


def _spec(rate: int = 200, measure_s: float = 10.0, dropped: float = 0.001) -> StepSpec:
    return StepSpec(
        base_url="http://127.0.0.1:1",
        rate=rate,
        query_file=Path("/q.json"),
        sequential=True,
        warmup_s=3.0,
        measure_s=measure_s,
        p99_ms=100.0,
        max_dropped_fraction=dropped,
    )


def _summary(
    count: int = 2000,
    p99: float = 40.0,
    failed: float = 0.0,
    dropped: int | None = 0,
    aborted: bool = False,
) -> dict[str, Any]:
    """A ``--summary-export`` document as k6 1.x writes it (threshold true = FAILED)."""
    metrics: dict[str, Any] = {
        "http_reqs{scenario:measure}": {"count": count, "rate": count / 13.0},
        "http_req_failed{scenario:measure}": {"passes": 0, "fails": count, "value": failed},
        "http_req_duration{scenario:measure}": {
            "avg": 12.0,
            "min": 2.0,
            "med": 10.0,
            "max": p99 * 1.5,
            "p(90)": 20.0,
            "p(95)": 25.0,
            "p(99)": p99,
            "p(99.9)": p99 * 1.2,
            "thresholds": {"p(99)<=200": aborted, "p(99)<=100": p99 > 100},
        },
        "http_reqs": {"count": count + 600, "rate": 200.0},  # the whole test: not the window
    }
    if dropped is not None:
        metrics["dropped_iterations{scenario:measure}"] = {"count": dropped, "rate": 0.0}
    return {"metrics": metrics}


def test_a_step_within_the_limits_passes() -> None:
    m = parse_step(_spec(), _summary(), "s.json")
    assert m.passed
    assert not m.aborted
    assert (m.requests, m.p50_ms, m.p95_ms, m.p99_ms) == (2000, 10.0, 25.0, 40.0)
    assert m.achieved_rps == 200.0  # window requests over the window, not k6's overall rate


@pytest.mark.parametrize(
    ("summary", "why"),
    [
        (_summary(p99=100.5), "p99 over the limit"),
        (_summary(failed=0.0005), "one error in two thousand"),
        (_summary(dropped=3), "dropped beyond 0.1 % of 2000"),
        (_summary(aborted=True, p99=250.0), "stopped early"),
        (_summary(count=0), "nothing answered"),
    ],
)
def test_a_step_fails_on_each_rule(summary: dict[str, Any], why: str) -> None:
    assert not parse_step(_spec(), summary, "s.json").passed, why


def test_dropped_allowance_and_a_missing_dropped_metric() -> None:
    assert parse_step(_spec(), _summary(dropped=2), "s.json").passed  # floor(2000 * 0.001)
    assert parse_step(_spec(), _summary(dropped=None), "s.json").dropped == 0
    assert not judge(_spec(dropped=0.0), 2000, 40.0, 0.0, 1, False)


def test_an_empty_window_has_infinite_latency() -> None:
    del_summary = _summary(count=0)
    del del_summary["metrics"]["http_req_duration{scenario:measure}"]["p(99)"]
    m = parse_step(_spec(), del_summary, "s.json")
    assert math.isinf(m.p99_ms)
    assert not m.passed


def test_malformed_summaries_name_the_file() -> None:
    with pytest.raises(RunError, match=r"s\.json: not a k6 summary"):
        parse_step(_spec(), {"nope": 1}, "s.json")
    bad = _summary()
    bad["metrics"]["http_reqs{scenario:measure}"]["count"] = "many"
    with pytest.raises(RunError, match=r"s\.json: malformed"):
        parse_step(_spec(), bad, "s.json")


def test_the_k6_environment_and_vus_follow_the_rate() -> None:
    spec = _spec(rate=2000)
    env = spec.env()
    assert env["CAPACITY_RATE"] == "2000"
    assert env["CAPACITY_MIX"] == "sequential"
    assert (env["CAPACITY_WARMUP_S"], env["CAPACITY_MEASURE_S"]) == ("3", "10")
    assert spec.vus() == (400, 800)  # every request at twice the 100 ms limit, and twice that
    assert _spec(rate=50).vus() == (20, 50)  # floors
    assert spec.planned == 20_000
    assert spec.iterations == 26_000
