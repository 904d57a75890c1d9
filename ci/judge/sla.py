"""Absolute gates (``perf.toml [sla]``), per scenario, on the median over runs.

Every scenario is held to ``p95_ms``, ``p99_ms`` and ``error_rate``, except the spike
scenario, whose errors are held to ``spike_error_rate`` (a sudden surge may shed a little);
a scenario that measures time to first event (SSE) is held to ``ttfe_p95_ms`` too.

:func:`check_sla` gates the candidate alone; :func:`check_sla_against_base` is the PR
gate's two-sided rule: a limit blocks a pull request only when the pull request breaks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ci.errors import ComparisonError
from ci.results import RunResults, ScenarioResult
from ci.settings import SlaConfig

#: The scenario whose error rate is held to ``spike_error_rate`` instead of ``error_rate``.
SPIKE_SCENARIO = "spike"


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
        errors = [s.error_rate for s in scen]
        if name == SPIKE_SCENARIO:
            gate("spike_error_rate", errors, sla.spike_error_rate, "<")
        else:
            gate("error_rate", errors, sla.error_rate, "<")
        gate("ttfe_p95_ms", [s.ttfe_ms.p95 for s in scen if s.ttfe_ms], sla.ttfe_p95_ms, "<")
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


# -- the SLA against the base (the PR gate) ---------------------------------------------

SlaPairStatus = Literal["pass", "fail", "pre-existing", "skipped"]


@dataclass(frozen=True, slots=True)
class SlaPairCheck:
    """One SLA limit judged on both sides: does the pull request break it?"""

    scenario: str
    name: str
    limit: float
    comparator: Literal["<", ">"]
    base: float | None  # None: the base has no such figure
    candidate: float
    status: SlaPairStatus
    message: str | None = None


def check_sla_against_base(
    base: Sequence[RunResults],
    candidate: Sequence[RunResults],
    sla: SlaConfig,
) -> list[SlaPairCheck]:
    """The two-sided SLA rule of the PR gate.

    =====================  =====================  =======================================
    candidate              base                   status
    =====================  =====================  =======================================
    keeps the limit        any                    pass
    skipped                any                    skipped
    breaches               keeps it (or has none) fail: the pull request breaks it
    breaches               breaches               pre-existing, unless the candidate is
                                                  :func:`clearly_worse` than the base:
                                                  then fail
    =====================  =====================  =======================================
    """
    base_checks = {(c.scenario, c.name): c for c in check_sla(base, sla)} if base else {}
    out = []
    for c in check_sla(candidate, sla):
        b = base_checks.get((c.scenario, c.name))
        where = f"SLA {c.scenario}/{c.name}"
        base_value = b.value if b is not None and b.status != "skipped" else None
        if c.status != "fail":
            status: SlaPairStatus = c.status
            message = c.message
            if c.status == "pass" and b is not None and b.status == "fail":
                message = f"{where}: the base breached it ({_v(b.value)}), the candidate keeps it"
        elif b is None or b.status != "fail":
            status = "fail"
            message = (
                f"{where}: the candidate breaches it ({_v(c.value)} vs limit {c.comparator} "
                f"{_v(c.limit)}) and the base does not"
                + (f" ({_v(b.value)})" if b is not None else "")
            )
        elif clearly_worse(c, b.value, sla):
            status = "fail"
            message = (
                f"{where}: both breach it, the candidate clearly worse ({_v(c.value)} vs the "
                f"base's {_v(b.value)}, beyond sla.both_breach_margin {sla.both_breach_margin})"
            )
        else:
            status = "pre-existing"
            message = (
                f"{where}: both breach it (candidate {_v(c.value)}, base {_v(b.value)}): "
                "pre-existing, does not block"
            )
        out.append(
            SlaPairCheck(
                c.scenario, c.name, c.limit, c.comparator, base_value, c.value, status, message
            )
        )
    return out


def _v(x: float) -> str:
    return f"{x:.4g}"


def clearly_worse(c: SlaCheck, base: float, sla: SlaConfig) -> bool:
    """Worse than the base's breaching ``base`` figure by more than the SLA's margin.

    The margin (``sla.both_breach_margin``) is relative: both sides breach, so the base's
    figure is past its limit and a ratio is defined. The error rate is the exception: a few
    failed requests move a small rate by a large ratio, so its margin is absolute, the
    limit itself (the candidate fails a whole SLA's worth of requests more).
    """
    if c.name == "error_rate":
        return c.value > base + c.limit
    if c.comparator == "<":  # lower is better
        return c.value > base * (1 + sla.both_breach_margin)
    return c.value < base / (1 + sla.both_breach_margin)
