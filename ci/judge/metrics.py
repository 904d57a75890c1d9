"""The named figures of a scenario, read from a results file (the history stores them)."""

from __future__ import annotations

from collections.abc import Callable

from ci.results import ScenarioResult


def cpu_ms_per_request(s: ScenarioResult) -> float | None:
    """CPU time of every service process over the scenario, per request, in ms.

    Each sample's ``cpu_percent`` covers the time since that process's previous sample, so
    CPU seconds are the sum of ``cpu_percent / 100 * dt`` per process. None without samples.
    """
    if s.requests <= 0 or not s.resources.samples:
        return None
    last: dict[int, float] = {}
    cpu_s = 0.0
    for sample in sorted(s.resources.samples, key=lambda x: x.t):
        previous = last.get(sample.pid)
        if previous is not None:
            cpu_s += sample.cpu_percent / 100 * (sample.t - previous)
        last[sample.pid] = sample.t
    return 1000 * cpu_s / s.requests if cpu_s > 0 else None


EXTRACTORS: dict[str, Callable[[ScenarioResult], float | None]] = {
    "latency_p50": lambda s: s.latency_ms.p50,
    "latency_p90": lambda s: s.latency_ms.p90,
    "latency_p95": lambda s: s.latency_ms.p95,
    "latency_p99": lambda s: s.latency_ms.p99,
    "throughput_rps": lambda s: s.throughput_rps,
    "error_rate": lambda s: s.error_rate,
    "ttfe_p50": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p50,
    "ttfe_p95": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p95,
    "ttfe_p99": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p99,
    "cache_hit_ratio": lambda s: None if s.cache is None else s.cache.hit_ratio,
    "peak_rss_mb": lambda s: s.resources.peak_rss_mb,
    "cpu_ms_per_request": cpu_ms_per_request,
}
