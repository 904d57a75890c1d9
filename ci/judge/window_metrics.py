"""What a metric's value is for one side of one window, and the paired values across windows.

Pure functions on a window of a :class:`~ci.results.duet.DuetRun`; they decide nothing (the
judge, :mod:`ci.judge.duet`, does).

==============================  ====================================================================
metric                          value of one side in one window
==============================  ====================================================================
``latency_pNN``                 the window's exact percentile (none without a sample)
``error_rate``                  failed / requests
``cpu_ms_per_request``          the whole side's CPU (service + its PostgreSQL backends + its
                                Valkey) / requests, each part also reported alone
``slow_share``                  searches answered ``tail_margin_ms`` after the other side's
                                answer to the same query / searches
``slow_lead``                   the side's slow searches + p / both sides' + 2p (p: the rule's
                                ``tail_prior``; a half each when the sum is 0), so its pair's
                                difference is (c - b) / (c + b + 2p): a load on the whole machine
                                that makes both sides lag more often leaves it at 0, and a window
                                with few slow searches moves it little
``rss_kb_per_1k_requests``      service RSS growth over the window per 1,000 requests
                                (:class:`~ci.results.duet.SideWindow`)
``valkey_calls_per_request``    commands the side's own Valkey server processed / requests:
                                an extra round trip per search shows as a count, not as time
==============================  ====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ci.errors import ComparisonError
from ci.results.duet import DuetWindow, Side, SideWindow
from ci.settings.gate import DUET_METRICS

#: Percentile of each latency metric (the share of samples above it is 1 - q).
PERCENTILES = {"latency_p50": 50, "latency_p90": 90, "latency_p95": 95, "latency_p99": 99}
#: Primary metrics a window may lack (older files, a run without a warm-up): demoted then.
OPTIONAL_METRICS = frozenset(
    {"slow_share", "slow_lead", "rss_kb_per_1k_requests", "valkey_calls_per_request"}
    | {n for n in DUET_METRICS if n.startswith(("stream_", "burst_"))}
)
#: Metrics whose pair from a window marked ``restarted`` is left out of the judgement.
SETTLING_METRICS = frozenset({"rss_kb_per_1k_requests"})


def judged(metric: str, window: DuetWindow) -> bool:
    """Whether ``window``'s pair counts for ``metric``."""
    return not (window.restarted and metric in SETTLING_METRICS)


def side_value(metric: str, side: SideWindow) -> float | None:
    """One side's figure of ``metric`` in one window (None: the window cannot give it)."""
    lat = side.latency_ms
    if metric in PERCENTILES:
        if lat.samples == 0:
            return None
        return {
            "latency_p50": lat.p50,
            "latency_p90": lat.p90,
            "latency_p95": lat.p95,
            "latency_p99": lat.p99,
        }[metric]
    if metric == "error_rate":
        return side.error_rate
    if metric == "cpu_ms_per_request":
        return side.cpu_ms_per_request
    if metric == "service_cpu_ms_per_request":
        return side.per_request_ms(side.cpu_s)
    if metric == "postgres_cpu_ms_per_request":
        return side.per_request_ms(side.postgres_cpu_s)
    if metric == "valkey_cpu_ms_per_request":
        return side.per_request_ms(side.valkey_cpu_s)
    if metric == "relay_cpu_ms_per_request":
        return side.per_request_ms(side.relay_cpu_s)
    if metric == "valkey_calls_per_request":
        return side.valkey_calls_per_request
    if metric == "slow_share":
        return side.slow_share
    if metric == "slow_lead":
        return None  # a share of both sides' slow searches: window_value gives it
    if metric == "rss_kb_per_1k_requests":
        return side.rss_kb_per_1k_requests
    if metric == "rss_peak_mb":
        return side.rss_peak_mb or None
    timing = {
        "stream_ttfe_p50": (side.ttfe_ms, "p50"),
        "stream_ttfe_p95": (side.ttfe_ms, "p95"),
        "stream_last_p50": (side.stream_ms, "p50"),
        "stream_last_p95": (side.stream_ms, "p95"),
        "burst_latency_p50": (side.burst_ms, "p50"),
        "burst_latency_p90": (side.burst_ms, "p90"),
    }.get(metric)
    if timing is not None:
        found, stat = timing
        if found is None or found.samples == 0:
            return None
        value = float(getattr(found, stat))
        return value if value > 0 else None
    raise ComparisonError(f"{metric!r} is not a duet metric")


def window_value(
    metric: str, window: DuetWindow, side: Side, tail_prior: float = 0.0
) -> float | None:
    """One side's figure of ``metric`` in ``window``: :func:`side_value`, or for
    ``slow_lead`` the side's share of both sides' slow searches, each side counted with
    ``tail_prior`` more (0.5 when neither has any)."""
    if metric != "slow_lead":
        return side_value(metric, window.side(side))
    mine, both = window.side(side).slow, (window.base.slow, window.candidate.slow)
    if mine is None or None in both:
        return None
    total = sum(s for s in both if s is not None) + 2 * tail_prior
    return 0.5 if total == 0 else (mine + tail_prior) / total


def tail_samples(metric: str, side: SideWindow) -> int | None:
    """Samples above the percentile a latency metric reports (None for other metrics)."""
    q = PERCENTILES.get(metric)
    if q is None:
        return None
    return math.floor(side.latency_ms.samples * (100 - q) / 100)


def paired_values(
    windows: Sequence[DuetWindow], metric: str, tail_prior: float = 0.0
) -> tuple[list[float], list[float]] | None:
    """Base and candidate values of every window, or None if some window lacks one."""
    base: list[float] = []
    cand: list[float] = []
    for w in windows:
        b = window_value(metric, w, "base", tail_prior)
        c = window_value(metric, w, "candidate", tail_prior)
        if b is None or c is None:
            return None
        base.append(b)
        cand.append(c)
    return base, cand
