"""Duet windows: counterbalanced slot order, and figures read from a recorded k6 summary."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.experiments.gate.windows import (
    abba_slots,
    backend_cpu_delta,
    process_cpu_s,
    process_rss_mb,
    slot_figures,
)

RESOURCES = Path(__file__).resolve().parents[3] / "resources"


def test_abba_blocks_balance_the_slots() -> None:
    slots = abba_slots(50, random.Random(1))
    assert len(slots) == 200
    for b in range(50):
        block = slots[4 * b : 4 * b + 4]
        assert block[0] == block[3] != block[1] == block[2]
    firsts = [slots[4 * b] for b in range(50)]
    assert 10 < firsts.count("base") < 40  # shuffled, not always the same way round
    assert abba_slots(50, random.Random(1)) == slots  # seeded


def test_slot_figures_from_a_recorded_summary() -> None:
    metrics = json.loads((RESOURCES / "k6" / "duet.summary.json").read_text())["metrics"]
    a = slot_figures(metrics, "a", cpu_s=3.6)
    assert a.requests == 1041
    assert a.searches == 1001
    assert a.failed == 0
    assert a.latency_ms.samples == 1001
    assert a.latency_ms.p50 == pytest.approx(3.345068)
    assert a.latency_ms.p90 == pytest.approx(24.905629)
    assert a.cpu_ms_per_request == pytest.approx(3600 / 1041)
    b = slot_figures(metrics, "b", cpu_s=3.6)
    assert b.latency_ms.p99 == pytest.approx(55.664161)


def test_a_slot_k6_never_saw_has_no_samples() -> None:
    s = slot_figures({}, "a", cpu_s=0.0)
    assert (s.requests, s.latency_ms.samples, s.cpu_ms_per_request) == (0, 0, None)


def test_failed_requests_are_the_rate_metric_passes() -> None:
    metrics = {
        "search_duet_a_requests": {"count": 100},
        "search_duet_a_searches": {"count": 100},
        "search_duet_a_failed": {"passes": 7, "fails": 93, "value": 0.07},
    }
    assert slot_figures(metrics, "a", cpu_s=1.0).failed == 7


def test_malformed_figures_are_a_run_error() -> None:
    with pytest.raises(RunError, match="slot a: malformed"):
        slot_figures({"search_duet_a_requests": {"count": "many"}}, "a", cpu_s=1.0)


def test_cpu_of_a_gone_process_is_an_error() -> None:
    assert process_cpu_s(__import__("os").getpid()) > 0
    with pytest.raises(RunError, match="is gone"):
        process_cpu_s(2**22 + 12345)


def test_every_variable_a_window_sets_is_read_by_lib_config() -> None:
    import re

    config = (Path(__file__).resolve().parents[4] / "scenarios" / "lib" / "config.js").read_text()
    read = set(re.findall(r"num\('([A-Z_]+)'", config)) | set(
        re.findall(r"__ENV\.([A-Z_]+)", config)
    )
    sent = {"RATE", "DUET_S", "UNIQUE_FRACTION", "WRITE_FRACTION", "QUERY_LOG"}
    sent |= {"DUET_URL_A", "DUET_URL_B", "DUET_NONCE", "TAIL_LIMIT_MS"}
    sent |= {"STREAM_FRACTION", "STREAM_K", "BURST_VUS", "BURST_ITERATIONS", "BURST_AT_S"}
    assert sent <= read


def test_slow_searches_streams_and_the_burst_per_slot() -> None:
    metrics = {
        "search_duet_a_requests": {"count": 140},
        "search_duet_a_searches": {"count": 100},
        "search_duet_a_latency": {"count": 100, "med": 3.0, "p(90)": 9.0, "p(95)": 12.0,
                                  "p(99)": 40.0, "avg": 5.0, "max": 80.0, "min": 1.0},
        "search_duet_a_slow": {"count": 3, "rate": 0.3},
        "search_duet_a_ttfe": {"count": 5, "med": 7.0, "p(90)": 9.0, "p(95)": 11.0, "max": 12.0},
        "search_duet_a_stream": {"count": 5, "med": 20.0, "p(90)": 30.0, "p(95)": 35.0,
                                 "max": 40.0},
        "search_duet_a_burst": {"count": 30, "med": 15.0, "p(90)": 25.0, "p(95)": 28.0,
                                "max": 33.0},
    }  # fmt: skip
    a = slot_figures(metrics, "a", cpu_s=1.0, counts_slow=True)
    assert a.slow == 3
    assert a.slow_share == pytest.approx(0.03)
    assert a.ttfe_ms is not None
    assert a.ttfe_ms.p95 == 11.0
    assert a.stream_ms is not None
    assert a.stream_ms.samples == 5
    assert a.burst_ms is not None
    assert a.burst_ms.p90 == 25.0
    # a warm-up window runs without a tail limit: its slow count is no figure
    assert slot_figures(metrics, "a", cpu_s=1.0).slow is None
    assert slot_figures({}, "b", cpu_s=0.0).ttfe_ms is None


def test_backend_cpu_counts_persistent_backends_by_delta_and_new_ones_from_birth() -> None:
    before = {10: 1.5, 11: 0.25, 12: 4.0}  # 12 exits during the window: not seen after
    after = {10: 2.0, 11: 0.25, 13: 0.125}  # 13 is born during the window
    assert backend_cpu_delta(before, after) == pytest.approx(0.5 + 0.0 + 0.125)


def test_rss_of_a_process_family() -> None:
    import os

    assert process_rss_mb(os.getpid()) > 10
    with pytest.raises(RunError, match="is gone"):
        process_rss_mb(2**22 + 12345)
