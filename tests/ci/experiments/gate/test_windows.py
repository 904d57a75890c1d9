"""Duet windows: counterbalanced slot order, and figures read from a recorded k6 summary."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.experiments.gate.windows import abba_slots, process_cpu_s, slot_figures

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
    sent |= {"DUET_URL_A", "DUET_URL_B", "DUET_NONCE"}
    assert sent <= read
