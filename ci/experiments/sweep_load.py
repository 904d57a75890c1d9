"""``perfci sweep pool|workers``: one stack setting varied under load, one run per value.

Each value gets its own ``perfci run`` (ci.measure.run.execute) on one stack folder, so the corpus
is loaded once and every run starts a fresh service, Valkey and pool with the value
applied. Values run in a shuffled order in each of ``repeat`` rounds, so that a drift of
the machine hits all values alike; the table gives, per value and scenario, the median
over the rounds of throughput, p95, p99 and error rate, whether the SLA holds, and the
throughput relative to the first value (for ``workers``: the scaling ratio).

"Throughput at the SLA" is the throughput of a run whose p95, p99 and error rate all meet
perf.toml's [sla]; a value that misses it is shown but never recommended.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import ConfigError
from ci.measure.run import RunOutcome, RunRequest
from ci.settings import SlaConfig

Progress = Callable[[str], None]
Execute = Callable[[RunRequest, Progress], RunOutcome]


@dataclass(frozen=True, slots=True)
class Knob:
    """A stack setting a sweep varies: its name, unit and how a value is applied."""

    name: str  # pool | workers
    label: str  # column title
    limits: tuple[int, int]  # accepted values, inclusive

    def apply(self, request: RunRequest, value: int) -> RunRequest:
        lo, hi = self.limits
        if not lo <= value <= hi:
            raise ConfigError(f"{self.name} value {value} is invalid: expected {lo}-{hi}")
        if self.name == "workers":
            return dataclasses.replace(request, stack=request.stack.with_overrides(workers=value))
        env = {
            **request.stack.service_env,
            "SEARCH_POOL_MAX_SIZE": str(value),
            "SEARCH_POOL_MIN_SIZE": str(min(2, value)),
        }
        return dataclasses.replace(request, stack=request.stack.with_overrides(service_env=env))


KNOBS = {
    "pool": Knob("pool", "pool size", (1, 200)),
    "workers": Knob("workers", "workers", (1, 64)),
}


@dataclass(frozen=True, slots=True)
class LoadPoint:
    """One scenario of one run at one value."""

    value: int
    round: int
    scenario: str
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    run_dir: str


@dataclass(frozen=True, slots=True)
class LoadRow:
    """Medians over the rounds of one value and scenario."""

    value: int
    scenario: str
    runs: int
    throughput_rps: float
    throughput_spread: tuple[float, float]  # min, max over the rounds
    p95_ms: float
    p99_ms: float
    error_rate: float
    meets_sla: bool
    relative: float | None  # throughput / the first value's (same scenario)


def sweep(
    knob: Knob,
    values: Sequence[int],
    request: RunRequest,
    repeat: int,
    progress: Progress,
    *,
    execute: Execute,
    seed: int | None = None,
) -> list[LoadPoint]:
    """Run ``request`` once per value and round; collect per-scenario figures."""
    if not values:
        raise ConfigError(f"sweep {knob.name}: give at least one value")
    if len(set(values)) != len(values):
        raise ConfigError(f"sweep {knob.name}: values repeat: {list(values)}")
    if repeat < 1:
        raise ConfigError(f"--repeat {repeat} is invalid: expected at least 1")
    requests = {v: knob.apply(request, v) for v in values}  # validate all before running
    rng = random.Random(seed)
    points: list[LoadPoint] = []
    for r in range(1, repeat + 1):
        order = list(values)
        rng.shuffle(order)
        for i, value in enumerate(order, start=1):
            progress(f"sweep {knob.name}: round {r}/{repeat}, run {i}/{len(order)}: {value}")
            outcome = execute(requests[value], progress)
            for s in outcome.results.scenarios:
                points.append(
                    LoadPoint(
                        value=value,
                        round=r,
                        scenario=s.name,
                        throughput_rps=s.throughput_rps,
                        p50_ms=s.latency_ms.p50,
                        p95_ms=s.latency_ms.p95,
                        p99_ms=s.latency_ms.p99,
                        error_rate=s.error_rate,
                        run_dir=str(outcome.run_dir),
                    )
                )
    return points


def summarise(points: Sequence[LoadPoint], values: Sequence[int], sla: SlaConfig) -> list[LoadRow]:
    """Median per (value, scenario), in the order of ``values`` then of first appearance."""
    scenarios = list(dict.fromkeys(p.scenario for p in points))
    rows: list[LoadRow] = []
    first: dict[str, float] = {}
    for scenario in scenarios:
        for value in values:
            mine = [p for p in points if p.value == value and p.scenario == scenario]
            if not mine:
                continue
            tput = [p.throughput_rps for p in mine]
            median_tput = statistics.median(tput)
            p95 = statistics.median(p.p95_ms for p in mine)
            p99 = statistics.median(p.p99_ms for p in mine)
            errors = statistics.median(p.error_rate for p in mine)
            base = first.setdefault(scenario, median_tput)
            rows.append(
                LoadRow(
                    value=value,
                    scenario=scenario,
                    runs=len(mine),
                    throughput_rps=median_tput,
                    throughput_spread=(min(tput), max(tput)),
                    p95_ms=p95,
                    p99_ms=p99,
                    error_rate=errors,
                    meets_sla=p95 < sla.p95_ms and p99 < sla.p99_ms and errors < sla.error_rate,
                    relative=median_tput / base if base > 0 else None,
                )
            )
    return rows


def recommend(rows: Sequence[LoadRow], scenario: str, within: float = 0.97) -> int | None:
    """The smallest value that meets the SLA with >= ``within`` of the best such throughput."""
    ok = [r for r in rows if r.scenario == scenario and r.meets_sla]
    if not ok:
        return None
    best = max(r.throughput_rps for r in ok)
    return min(r.value for r in ok if r.throughput_rps >= within * best)


def rows_as_json(rows: Sequence[LoadRow], points: Sequence[LoadPoint]) -> dict[str, Any]:
    return {
        "rows": [dataclasses.asdict(r) for r in rows],
        "points": [dataclasses.asdict(p) for p in points],
    }


def write_outputs(
    out: Path, knob: Knob, rows: Sequence[LoadRow], points: Sequence[LoadPoint]
) -> None:
    import json

    from ci.render.sweep import load_plot_png, load_table

    out.mkdir(parents=True, exist_ok=True)
    (out / f"sweep-{knob.name}.txt").write_text(load_table(rows, knob) + "\n")
    (out / f"sweep-{knob.name}.json").write_text(json.dumps(rows_as_json(rows, points), indent=2))
    (out / f"sweep-{knob.name}.png").write_bytes(load_plot_png(rows, knob))
