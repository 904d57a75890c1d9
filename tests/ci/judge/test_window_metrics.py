"""A window's metric values: each side's figure, the tail lead across both sides, tail samples."""

from __future__ import annotations

import msgspec
import pytest

from ci.errors import ComparisonError
from ci.judge.window_metrics import side_value, tail_samples, window_value
from ci.results.duet import DuetWindow
from tests.ci.judge.duet_factory import duet_run, side


def test_side_values_and_tail_samples() -> None:
    s = side(p50=3.0, p90=20.0, cpu_ms=2.5, samples=1100)
    assert side_value("latency_p50", s) == 3.0
    assert side_value("latency_p90", s) == 20.0
    assert side_value("cpu_ms_per_request", s) == pytest.approx(2.5)
    assert side_value("error_rate", s) == 0.0
    assert tail_samples("latency_p90", s) == 110
    assert tail_samples("latency_p95", s) == 55
    assert tail_samples("latency_p99", s) == 11
    assert tail_samples("cpu_ms_per_request", s) is None
    with pytest.raises(ComparisonError, match="not a duet metric"):
        side_value("ttfe_p95", s)


def test_the_whole_side_cpu_and_its_parts() -> None:
    s = msgspec.structs.replace(
        side(cpu_ms=2.0, samples=956, stream_ms=None),
        postgres_cpu_s=1.0,
        valkey_cpu_s=0.5,
        relay_cpu_s=0.25,
    )  # 1,000 requests: 2 s service, 1 s PostgreSQL, 0.5 s Valkey; 0.25 s relay
    assert side_value("cpu_ms_per_request", s) == pytest.approx(3.5)  # the relay is not in it
    assert side_value("service_cpu_ms_per_request", s) == pytest.approx(2.0)
    assert side_value("postgres_cpu_ms_per_request", s) == pytest.approx(1.0)
    assert side_value("valkey_cpu_ms_per_request", s) == pytest.approx(0.5)
    assert side_value("relay_cpu_ms_per_request", s) == pytest.approx(0.25)
    assert side_value("relay_cpu_ms_per_request", side()) is None  # no relay: no figure


def test_valkey_commands_per_request() -> None:
    s = msgspec.structs.replace(side(samples=956, stream_ms=None), valkey_calls=2500)
    assert side_value("valkey_calls_per_request", s) == pytest.approx(2.5)  # 1,000 requests
    older = side(valkey_per_request=None)  # an older file: not counted
    assert side_value("valkey_calls_per_request", older) is None


def test_rss_growth_and_slow_share_per_side() -> None:
    s = side(samples=956, slow=48, rss_growth_kb=2048.0, stream_ms=None)  # 1,000 requests
    assert side_value("rss_kb_per_1k_requests", s) == pytest.approx(2048.0)
    assert side_value("slow_share", s) == pytest.approx(48 / 956)
    assert side_value("rss_peak_mb", s) == pytest.approx(180.0 + 2.0 + 2.0)
    bare = side(slow=None, rss_growth_kb=None)
    assert side_value("slow_share", bare) is None
    assert side_value("rss_kb_per_1k_requests", bare) is None


def test_the_tail_lead_is_a_sides_share_of_both_sides_slow_searches() -> None:
    def window(base_slow: int | None, cand_slow: int | None) -> DuetWindow:
        (w,) = duet_run([(side(slow=base_slow), side(slow=cand_slow))]).windows[-1:]
        return w

    w = window(10, 30)  # the candidate lagged the base three times as often
    assert window_value("slow_lead", w, "candidate") == pytest.approx(0.75)
    assert window_value("slow_lead", w, "base") == pytest.approx(0.25)
    # a loaded machine: both lag ten times as often, the lead stays where it was
    assert window_value("slow_lead", window(100, 300), "candidate") == pytest.approx(0.75)
    assert window_value("slow_lead", window(0, 0), "base") == 0.5  # neither lagged
    assert window_value("slow_lead", window(None, 3), "candidate") is None
    assert side_value("slow_lead", w.candidate) is None  # it needs both sides
    assert window_value("slow_share", w, "base") == side_value("slow_share", w.base)


def test_the_tail_prior_weighs_a_window_by_its_slow_searches() -> None:
    def lead(base_slow: int, cand_slow: int, prior: float) -> float | None:
        (w,) = duet_run([(side(slow=base_slow), side(slow=cand_slow))]).windows[-1:]
        c = window_value("slow_lead", w, "candidate", prior)
        b = window_value("slow_lead", w, "base", prior)
        assert c is not None
        assert b is not None
        assert c + b == pytest.approx(1.0)
        return c - b

    # one slow search against none says little: the lead stays far below 0.15
    assert lead(0, 1, 10.0) == pytest.approx(1 / 21)
    assert lead(0, 1, 0.0) == pytest.approx(1.0)  # without a prior it is the largest lead
    # a stall of 2 % of a 600-search window (12) beside one lag of the machine's
    assert lead(1, 13, 10.0) == pytest.approx(12 / 34)
    # hundreds of lags on a loaded machine: the prior hardly moves the lead
    assert lead(100, 300, 10.0) == pytest.approx(200 / 420)
    assert lead(0, 0, 10.0) == 0.0
