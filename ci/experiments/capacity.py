"""``perfci sweep capacity``: the search rule, the figures, and their medians over rounds.

Capacity is the highest open-model arrival rate a service answers with p99 <= the limit
(100 ms), no error and ~no dropped iteration (:func:`ci.measure.capacity.judge`). Each
service climbs its own :class:`Ladder` in every round and for every query mix:

================  ==================================================================
phase             rates tried
================  ==================================================================
climb             ``start``, then x ``factor`` per passing step, up to ``max_rate``
bisect            midpoints between the highest pass and the lowest fail, until they
                  are within ``resolution`` (relative) of each other
================  ==================================================================

The first step, at ``start`` (the light load, 50/s), also gives the light-load p50 and
p95. The orchestration (services, query files, interleaving) is
:mod:`ci.experiments.capacity_run`; tables and plots are :mod:`ci.render.capacity`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ci.errors import ConfigError
from ci.measure.capacity import StepMeasure
from ci.settings.capacity import check_app_factory

SERVICES = ("service", "reference")  # always run; variants (of the service) may join
REFERENCE = "reference"
MIXES = ("zipf", "unique")
RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Variant:
    """One more service in the interleaving: the service with other settings, or the
    service of another checkout (``code_root``: an A/B of a change, both against the
    same reference in the same run)."""

    name: str
    env: tuple[tuple[str, str], ...] = ()  # SEARCH_* settings on top of the service's
    code_root: str | None = None


@dataclass(frozen=True, slots=True)
class CapacityConfig:
    """What one capacity run does; validated when built."""

    docs: int = 20_000
    seed: int = 42  # corpus, query log, unique queries
    embedder: str = "minilm"
    mixes: tuple[str, ...] = MIXES
    repeat: int = 3  # rounds; medians and spread over them
    start_rate: int = 50  # first step of every ladder: the light load
    factor: float = 2.0
    max_rate: int = 6400
    resolution: float = 0.1  # stop bisecting when fail - pass <= this x pass
    warmup_s: float = 3.0
    measure_s: float = 10.0
    p99_ms: float = 100.0
    max_dropped_fraction: float = 0.001
    zipf_warm_rate: int = 100  # the Zipf log's distinct queries once, at this rate
    order_seed: int | None = None  # the interleaving order (random per step)
    variants: tuple[Variant, ...] = ()  # more services in the same interleaving
    # the reference's ASGI factory, module.path:function (perf.toml [capacity] reference_app)
    reference_app: str | None = None

    @property
    def services(self) -> tuple[str, ...]:
        return (*SERVICES, *(v.name for v in self.variants))

    def __post_init__(self) -> None:
        checks = [
            (self.docs >= 1, "--docs", self.docs, ">= 1"),
            (self.embedder in ("minilm", "hash"), "--embedder", self.embedder, "minilm or hash"),
            (
                bool(self.mixes) and set(self.mixes) <= set(MIXES),
                "--mix",
                ",".join(self.mixes),
                f"one or more of {', '.join(MIXES)}",
            ),
            (len(set(self.mixes)) == len(self.mixes), "--mix", ",".join(self.mixes), "no repeats"),
            (self.repeat >= 1, "--repeat", self.repeat, ">= 1"),
            (self.start_rate >= 1, "--start-rate", self.start_rate, ">= 1"),
            (self.factor > 1, "--factor", self.factor, "> 1"),
            (self.max_rate >= self.start_rate, "--max-rate", self.max_rate, ">= --start-rate"),
            (0 < self.resolution < 1, "--resolution", self.resolution, "in (0, 1)"),
            # k6 runs no scenario shorter than 1 s
            (self.warmup_s == 0 or self.warmup_s >= 1, "--warmup-s", self.warmup_s, "0 or >= 1"),
            (self.measure_s >= 1, "--step-s", self.measure_s, ">= 1"),
            (self.p99_ms > 0, "--p99-ms", self.p99_ms, "> 0"),
            (
                0 <= self.max_dropped_fraction < 1,
                "max_dropped_fraction",
                self.max_dropped_fraction,
                "in [0, 1)",
            ),
            (self.zipf_warm_rate >= 1, "zipf_warm_rate", self.zipf_warm_rate, ">= 1"),
            (
                len(set(self.services)) == len(self.services)
                and all(n.isidentifier() for n in self.services),
                "--variant",
                ",".join(self.services),
                "distinct names (letters, digits, _), not service or reference",
            ),
            (
                all(k.startswith("SEARCH_") for v in self.variants for k, _ in v.env),
                "--variant",
                self.variants,
                "SEARCH_* settings only",
            ),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ConfigError(f"{name} {value} is invalid: expected {expected}")
        if self.reference_app is not None:
            check_app_factory("--reference-app", self.reference_app)


@dataclass(slots=True)
class Ladder:
    """One service's search for its capacity in one round and mix (module docstring)."""

    start: int
    factor: float
    max_rate: int
    resolution: float
    passed: int | None = None  # the highest rate that passed
    failed: int | None = None  # the lowest rate that failed
    tried: list[int] = field(default_factory=list)

    def next_rate(self) -> int | None:
        """The next rate to try; None: the search is over."""
        if self.passed is None:
            return self.start if self.failed is None else None  # the start failed: < start
        if self.failed is None:
            if self.passed >= self.max_rate:
                return None
            return min(self.max_rate, max(self.passed + 1, math.ceil(self.passed * self.factor)))
        if self.failed - self.passed <= max(1.0, self.resolution * self.passed):
            return None
        return (self.passed + self.failed) // 2

    def record(self, rate: int, ok: bool) -> None:
        self.tried.append(rate)
        if ok:
            self.passed = rate if self.passed is None else max(self.passed, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)

    @property
    def capacity(self) -> int:
        """The highest passing rate; 0 when even the start failed."""
        return self.passed or 0


@dataclass(frozen=True, slots=True)
class CapacityPoint:
    """One measured step: which service, mix and round, at what rate, with what result."""

    service: str
    mix: str
    round: int
    step: int  # position in the ladder (1: the light load)
    rate: int
    requests: int
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed_rate: float
    dropped: int
    aborted: bool
    passed: bool

    @classmethod
    def of(cls, service: str, mix: str, rnd: int, step: int, m: StepMeasure) -> CapacityPoint:
        return cls(
            service, mix, rnd, step, m.rate, m.requests, m.achieved_rps, m.p50_ms,
            m.p95_ms, m.p99_ms, m.failed_rate, m.dropped, m.aborted, m.passed,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, min and max over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        assert values, "a spread needs at least one value"
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True, slots=True)
class CapacityRow:
    """One service and mix over all rounds."""

    service: str
    mix: str
    rounds: int
    capacity_rps: Spread
    light_p50_ms: Spread
    light_p95_ms: Spread
    ratio: Spread | None  # service / reference capacity, per round (service rows only)


def capacities(points: Sequence[CapacityPoint]) -> dict[tuple[str, str, int], int]:
    """(service, mix, round) -> the highest passing rate (0: none passed)."""
    out: dict[tuple[str, str, int], int] = {}
    for p in points:
        key = (p.service, p.mix, p.round)
        out[key] = max(out.get(key, 0), p.rate if p.passed else 0)
    return out


def summarise(points: Sequence[CapacityPoint], light_rate: int) -> list[CapacityRow]:
    """Per (mix, service): capacity, light-load p50/p95 and the ratio to the reference."""
    caps = capacities(points)
    rows: list[CapacityRow] = []
    services = list(dict.fromkeys([*SERVICES, *(p.service for p in points)]))
    for mix in dict.fromkeys(p.mix for p in points):
        for service in services:
            rounds = sorted({r for (s, m, r) in caps if s == service and m == mix})
            if not rounds:
                continue
            light = [
                p
                for p in points
                if p.service == service and p.mix == mix and p.step == 1 and p.rate == light_rate
            ]
            ratios = [
                caps[(service, mix, r)] / caps[(REFERENCE, mix, r)]
                for r in rounds
                if service != REFERENCE and caps.get((REFERENCE, mix, r), 0) > 0
            ]
            rows.append(
                CapacityRow(
                    service=service,
                    mix=mix,
                    rounds=len(rounds),
                    capacity_rps=Spread.of([caps[(service, mix, r)] for r in rounds]),
                    light_p50_ms=Spread.of([p.p50_ms for p in light] or [math.nan]),
                    light_p95_ms=Spread.of([p.p95_ms for p in light] or [math.nan]),
                    ratio=Spread.of(ratios) if ratios else None,
                )
            )
    return rows


def as_json(
    config: CapacityConfig, points: Sequence[CapacityPoint], rows: Sequence[CapacityRow]
) -> dict[str, Any]:
    return {
        "version": RESULT_VERSION,
        "config": asdict(config),
        "rows": [asdict(r) for r in rows],
        "points": [asdict(p) for p in points],
    }


def write_outputs(
    out: Path,
    config: CapacityConfig,
    points: Sequence[CapacityPoint],
    rows: Sequence[CapacityRow],
) -> str:
    """``capacity.json``, ``capacity.md`` (both tables) and ``capacity.png``; the table."""
    from ci.render.capacity import capacity_plot_png, capacity_table, steps_table

    out.mkdir(parents=True, exist_ok=True)
    table = capacity_table(rows, config.start_rate, config.p99_ms)
    (out / "capacity.json").write_text(json.dumps(as_json(config, points, rows), indent=2))
    (out / "capacity.md").write_text(f"{table}\n\nEvery step:\n\n{steps_table(points)}\n")
    if points:
        (out / "capacity.png").write_bytes(capacity_plot_png(points, config.p99_ms))
    return table
