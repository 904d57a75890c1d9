"""Absolute gates on the candidate (``perf.toml [sla]``), per scenario, on the median over runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ci.errors import ComparisonError
from ci.results import RunResults, ScenarioResult
from ci.settings import SlaConfig


@dataclass(frozen=True, slots=True)
class SlaCheck:
    """An absolute gate on the candidate: ``value comparator limit`` must hold."""

    scenario: str
    name: str
    value: float
    limit: float
    comparator: Literal["<", ">"]
    runs: int
    status: Literal["pass", "fail", "skipped"]
    message: str | None = None


def check_sla(candidate: Sequence[RunResults], sla: SlaConfig) -> list[SlaCheck]:
    """Absolute gates on the candidate, per scenario, on the median over runs."""
    if not candidate:
        raise ComparisonError("no candidate runs to check against the SLA")
    checks: list[SlaCheck] = []
    names: list[str] = []
    for r in candidate:
        names.extend(n for n in r.scenario_names if n not in names)
    for name in names:
        scen = [r.scenario(name) for r in candidate if name in r.scenario_names]

        def gate(
            key: str,
            values: Sequence[float],
            limit: float,
            comparator: Literal["<", ">"],
            *,
            scenario: str = name,
        ) -> None:
            if not values:
                return
            value = float(np.median(values))
            ok = value < limit if comparator == "<" else value > limit
            checks.append(
                SlaCheck(
                    scenario, key, value, limit, comparator, len(values), "pass" if ok else "fail"
                )
            )

        gate("p95_ms", [s.latency_ms.p95 for s in scen], sla.p95_ms, "<")
        gate("p99_ms", [s.latency_ms.p99 for s in scen], sla.p99_ms, "<")
        gate("error_rate", [s.error_rate for s in scen], sla.error_rate, "<")
        _gate_hit_ratio(name, scen, sla, checks)
        memory = [s.memory for s in scen if s.memory is not None]
        if memory:
            slope = float(np.median([m.rss_slope_mb_per_10min for m in memory]))
            leaking = sum(m.leaking for m in memory)
            ok = slope < sla.rss_slope_mb_per_10min and not leaking
            checks.append(
                SlaCheck(
                    name,
                    "rss_slope_mb_per_10min",
                    slope,
                    sla.rss_slope_mb_per_10min,
                    "<",
                    len(memory),
                    "pass" if ok else "fail",
                    f"leak detected in {leaking} of {len(memory)} run(s)" if leaking else None,
                )
            )
    return checks


def _gate_hit_ratio(
    name: str, scen: Sequence[ScenarioResult], sla: SlaConfig, checks: list[SlaCheck]
) -> None:
    """Hit ratio > limit, on the runs whose cache saw enough lookups to be past its cold start."""
    cached = [s.cache for s in scen if s.cache is not None and s.cache.hit_ratio is not None]
    if not cached:
        return
    warm = [c for c in cached if c.hits + c.misses >= sla.cache_hit_min_lookups]
    if not warm:
        lookups = int(np.median([c.hits + c.misses for c in cached]))
        ratio = float(np.median([c.hit_ratio for c in cached if c.hit_ratio is not None]))
        checks.append(
            SlaCheck(
                name, "cache_hit_ratio", ratio, sla.cache_hit_ratio, ">", len(cached), "skipped",
                f"{lookups} lookups < sla.cache_hit_min_lookups {sla.cache_hit_min_lookups}: "
                "the cache is still warming up",
            )
        )  # fmt: skip
        return
    value = float(np.median([c.hit_ratio for c in warm if c.hit_ratio is not None]))
    status: Literal["pass", "fail"] = "pass" if value > sla.cache_hit_ratio else "fail"
    checks.append(
        SlaCheck(name, "cache_hit_ratio", value, sla.cache_hit_ratio, ">", len(warm), status)
    )
