"""Duet files for tests: windows whose per-side figures are given, or drawn around an effect."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ci.results.duet import (
    DuetDesign,
    DuetRevision,
    DuetRun,
    DuetWindow,
    SideWindow,
    Timing,
    WindowLatency,
)


def side(
    *,
    p50: float = 4.0,
    p90: float = 25.0,
    cpu_ms: float = 3.5,
    samples: int = 1100,
    failed: int = 0,
    slow: int | None = 22,
    rss_growth_kb: float | None = 0.0,
    stream_ms: float | None = 16.0,
    burst_ms: float | None = None,
    valkey_per_request: float | None = 3.6,
) -> SideWindow:
    """One side's window; ``rss_growth_kb``: service RSS growth over it (None: not measured);
    ``stream_ms``: the median time to the last event of its streams (None: no stream);
    ``burst_ms``: the median latency of its burst's 150 searches (None: no burst);
    ``valkey_per_request``: the commands its Valkey server processed per request (None: not
    counted)."""
    bursts = 0 if burst_ms is None else 150
    streams = 0 if stream_ms is None else 36
    requests = samples + failed + 44 + streams + bursts  # 22 writes: an ingest, a delete each
    rss_start = 180.0
    rss_end = None if rss_growth_kb is None else rss_start + rss_growth_kb / 1024
    return SideWindow(
        requests=requests,
        searches=samples + failed,
        failed=failed,
        cpu_s=cpu_ms * requests / 1000,
        latency_ms=WindowLatency(
            samples=samples,
            p50=p50,
            p90=p90,
            p95=p90 * 1.2,
            p99=p90 * 2,
            mean=p50 * 2,
            maximum=p90 * 4,
        ),
        slow=None if slow is None else min(slow, samples),
        rss_start_mb=None if rss_end is None else rss_start,
        rss_end_mb=rss_end,
        rss_peak_mb=None if rss_end is None else max(rss_start, rss_end) + 2.0,
        stream_ms=None
        if stream_ms is None
        else Timing(streams, stream_ms, stream_ms * 1.3, stream_ms * 1.5, stream_ms * 2),
        burst_ms=None
        if burst_ms is None
        else Timing(bursts, burst_ms, burst_ms * 1.4, burst_ms * 1.6, burst_ms * 2),
        valkey_calls=None if valkey_per_request is None else round(valkey_per_request * requests),
    )


def duet_run(
    pairs: Sequence[tuple[SideWindow, SideWindow]], warmup: int = 4, seed: int = 1
) -> DuetRun:
    """``warmup`` copies of the first pair, then ``pairs`` (base, candidate)."""
    all_pairs = [pairs[0]] * warmup + list(pairs)
    windows = tuple(
        DuetWindow(
            index=i,
            block=i // 4,
            warmup=i < warmup,
            slot_a="base" if (i // 2) % 2 == 0 else "candidate",
            started_at="2026-12-01T10:00:00+00:00",
            duration_s=10.1,
            base=b,
            candidate=c,
        )
        for i, (b, c) in enumerate(all_pairs)
    )
    return DuetRun(
        base=DuetRevision("main", "a" * 40),
        candidate=DuetRevision("pr", "b" * 40),
        design=DuetDesign(
            rate=110.0,
            window_s=10.0,
            warmup_windows=warmup,
            unique_fraction=0.3,
            write_fraction=0.02,
            order_seed=seed,
            workers=1,
            stream_fraction=0.03,
            stream_k=200,
            burst_vus=50,
            burst_iterations=3,
        ),
        windows=windows,
    )


def drawn_run(
    n: int,
    *,
    sd: float = 0.03,
    cpu_effect: float = 0.0,
    p90_effect: float = 0.0,
    samples: int = 1100,
    seed: int = 0,
    slow_share: float = 0.06,
    slow_effect: float = 0.0,
    leak_kb_per_request: float = 0.0,
    rss_sd_kb: float = 600.0,
    stream_sd: float = 0.05,
    stream_effect: float = 0.0,
    burst_sd: float = 0.15,
    burst_effect: float = 0.0,
    valkey_sd: float = 0.05,
    valkey_effect: float = 0.0,
) -> DuetRun:
    """``n`` windows: noise of SD ``sd`` (log scale) per metric, plus the given effects;
    slow searches drawn binomially around ``slow_share`` (+ ``slow_effect`` on the
    candidate; A/A the sides' medians were 5.0-7.8 % in two runs, 2026-12-07, and a 50-ms
    stall of 2 % of searches added 2.5 pp (HL; mean 4.2) in one, docs/gate-calibration.md),
    RSS steps of SD ``rss_sd_kb`` per window on both sides (+ the candidate's leak per
    request), burst medians of SD ``burst_sd`` (log scale), Valkey commands per request of SD
    ``valkey_sd`` around 3.6 (+ ``valkey_effect`` on the candidate; the zoo of 2026-12-07 read
    3.6, and its comment-only patch's 12-pair interval -0.03 to +0.03)."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])  # slow counts and RSS: the latency draws stay put
    streams = np.random.default_rng([seed, 2])  # stream timings: the others stay put
    bursts = np.random.default_rng([seed, 3])  # burst medians: the others stay put
    valkey = np.random.default_rng([seed, 4])  # Valkey commands: the others stay put
    pairs = []
    for _ in range(n):
        level = float(rng.uniform(0.8, 1.2))  # the machine drifts: both sides alike
        noise = rng.normal(0.0, sd, 3)
        rss = extra.normal(0.0, rss_sd_kb, 2)
        stream = float(streams.normal(0.0, stream_sd))
        burst = float(bursts.normal(0.0, burst_sd))
        calls = valkey.normal(3.6, valkey_sd, 2)
        base = side(
            p50=4.0 * level,
            p90=25.0 * level,
            cpu_ms=3.5 * level,
            samples=samples,
            slow=int(extra.binomial(samples, slow_share)),
            rss_growth_kb=float(rss[0]),
            stream_ms=16.0 * level,
            burst_ms=60.0 * level,
            valkey_per_request=float(calls[0]),
        )
        cand = side(
            p50=4.0 * level * math.exp(noise[0]),
            p90=25.0 * level * math.exp(noise[1] + math.log1p(p90_effect)),
            cpu_ms=3.5 * level * math.exp(noise[2] + math.log1p(cpu_effect)),
            samples=samples,
            slow=int(extra.binomial(samples, slow_share + slow_effect)),
            rss_growth_kb=float(rss[1]) + leak_kb_per_request * (samples + 44),
            stream_ms=16.0 * level * math.exp(stream + math.log1p(stream_effect)),
            burst_ms=60.0 * level * math.exp(burst + math.log1p(burst_effect)),
            valkey_per_request=float(calls[1]) + valkey_effect,
        )
        pairs.append((base, cand))
    return duet_run(pairs)
