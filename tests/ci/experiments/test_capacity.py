"""``perfci sweep capacity``: the search rule, the interleaving, and the medians."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.experiments.capacity import (
    CapacityConfig,
    CapacityPoint,
    Ladder,
    Variant,
    capacities,
    summarise,
    write_outputs,
)
from ci.experiments.capacity_run import CapacityRun, execute
from ci.measure.capacity import StepMeasure, StepSpec, judge


def _climb(true_capacity: int, ladder: Ladder) -> list[int]:
    """Run a ladder against a server that passes every rate up to ``true_capacity``."""
    while (rate := ladder.next_rate()) is not None:
        ladder.record(rate, rate <= true_capacity)
    return ladder.tried


def test_ladder_climbs_then_bisects_to_the_resolution() -> None:
    ladder = Ladder(start=50, factor=2.0, max_rate=6400, resolution=0.1)
    assert _climb(170, ladder) == [50, 100, 200, 150, 175, 162]
    assert ladder.capacity == 162  # within 10 % of the true 170, never above it


@pytest.mark.parametrize("true_capacity", [55, 140, 999, 2345, 6000])
def test_ladder_ends_within_the_resolution_below_the_truth(true_capacity: int) -> None:
    ladder = Ladder(start=50, factor=2.0, max_rate=6400, resolution=0.1)
    _climb(true_capacity, ladder)
    assert ladder.capacity <= true_capacity
    assert ladder.failed is not None
    assert ladder.failed - ladder.capacity <= max(1, 0.1 * ladder.capacity)
    assert len(ladder.tried) <= 14


def test_ladder_edges_start_fails_and_max_rate_passes() -> None:
    low = Ladder(start=50, factor=2.0, max_rate=400, resolution=0.1)
    assert _climb(10, low) == [50]
    assert low.capacity == 0
    high = Ladder(start=50, factor=2.0, max_rate=300, resolution=0.1)
    assert _climb(10_000, high) == [50, 100, 200, 300]
    assert high.capacity == 300


def test_config_names_the_bad_option() -> None:
    with pytest.raises(ConfigError, match="--mix"):
        CapacityConfig(mixes=("zipf", "nope"))
    with pytest.raises(ConfigError, match="--max-rate"):
        CapacityConfig(start_rate=100, max_rate=50)
    with pytest.raises(ConfigError, match="--factor"):
        CapacityConfig(factor=1.0)
    with pytest.raises(ConfigError, match="--warmup-s"):
        CapacityConfig(warmup_s=0.5)


def _point(service: str, mix: str, rnd: int, step: int, rate: int, ok: bool) -> CapacityPoint:
    p50 = 8.0 if service == "service" else 10.0
    return CapacityPoint(
        service, mix, rnd, step, rate, rate * 10, float(rate), p50 + rnd, p50 * 2, 50.0,
        0.0, 0, False, ok,
    )  # fmt: skip


def test_summary_gives_medians_spread_and_per_round_ratios() -> None:
    points = []
    for rnd, (ours, ref) in enumerate([(400, 200), (300, 200), (500, 100)], start=1):
        points += [_point("service", "unique", rnd, 1, 50, True)]
        points += [_point("reference", "unique", rnd, 1, 50, True)]
        points += [_point("service", "unique", rnd, 2, ours, True)]
        points += [_point("service", "unique", rnd, 3, ours * 2, False)]
        points += [_point("reference", "unique", rnd, 2, ref, True)]
        points += [_point("reference", "unique", rnd, 3, ref * 2, False)]
    assert capacities(points)[("service", "unique", 2)] == 300
    service, reference = summarise(points, light_rate=50)
    assert (service.service, reference.service) == ("service", "reference")
    assert (service.capacity_rps.median, service.capacity_rps.low) == (400, 300)
    assert service.capacity_rps.high == 500
    assert service.ratio is not None
    assert (service.ratio.median, service.ratio.low, service.ratio.high) == (2.0, 1.5, 5.0)
    assert reference.ratio is None
    assert (service.light_p50_ms.median, service.light_p50_ms.low) == (10.0, 9.0)
    assert reference.light_p95_ms.median == 20.0


class FakeServers:
    """Passes every step up to a capacity per (service, mix); remembers what it was sent."""

    def __init__(self, caps: dict[tuple[str, str], int]) -> None:
        self.caps = caps
        self.calls: list[tuple[str, int, str, bool]] = []
        self.unique_texts: list[str] = []

    def __call__(self, spec: StepSpec, name: str) -> StepMeasure:
        service = "service" if "service" in spec.base_url else "reference"
        mix = "unique" if "unique-" in spec.query_file.name else "zipf"
        self.calls.append((service, spec.rate, name, spec.sequential))
        if mix == "unique":
            queries = json.loads(spec.query_file.read_text())["queries"]
            assert len(queries) >= spec.iterations, "a sequential step must not wrap around"
            self.unique_texts += [q["q"] for q in queries]
        ok = spec.rate <= self.caps[(service, mix)]
        p99 = 40.0 if ok else 400.0
        return StepMeasure(
            spec.rate, spec.planned, float(spec.rate), 5.0, 9.0, p99, 0.0, 0, not ok,
            judge(spec, spec.planned, p99, 0.0, 0, not ok),
        )  # fmt: skip


def test_run_interleaves_both_ladders_and_never_resends_a_unique_text(tmp_path: Path) -> None:
    log = tmp_path / "querylog.json"
    log.write_text(
        json.dumps({"queries": [{"q": f"q{i}", "k": 10, "weight": 1} for i in range(300)]})
    )
    fake = FakeServers(
        {("service", "zipf"): 1700, ("reference", "zipf"): 160,
         ("service", "unique"): 330, ("reference", "unique"): 150}
    )  # fmt: skip
    config = CapacityConfig(repeat=2, measure_s=2.0, warmup_s=1.0, order_seed=3)
    urls = {"service": "http://service", "reference": "http://reference"}
    points = CapacityRun(config, urls, log, tmp_path, fake, lambda _m: None).run()
    # every text of every unique step is new, across steps, services and rounds
    assert len(fake.unique_texts) == len(set(fake.unique_texts)) > 0
    # the Zipf mix starts each round with both services' warm-up over the log, then climbs
    warm = [c for c in fake.calls if c[2].endswith("-warm")]
    assert [(s, r) for s, r, _, _ in warm] == [("service", 100), ("reference", 100)] * 2
    # step by step: at every step index both services run while both ladders are open
    first_round = [p for p in points if p.round == 1 and p.mix == "unique"]
    steps = [sorted(p.service for p in first_round if p.step == n) for n in (1, 2, 3)]
    assert steps == [["reference", "service"]] * 3
    rows = {(r.service, r.mix): r for r in summarise(points, config.start_rate)}
    assert rows[("service", "zipf")].capacity_rps.median <= 1700
    assert rows[("service", "zipf")].capacity_rps.median >= 1700 / 1.1
    assert rows[("reference", "unique")].capacity_rps.median == 150
    ratio = rows[("service", "unique")].ratio
    assert ratio is not None
    assert math.isclose(ratio.median, 325 / 150)
    table = write_outputs(tmp_path / "out", config, points, list(rows.values()))
    assert "| all-unique (every request a miss) | service | 2 | 325 | 2.17 |" in table
    saved = json.loads((tmp_path / "out" / "capacity.json").read_text())
    assert saved["version"] == 1
    assert len(saved["points"]) == len(points)
    assert (tmp_path / "out" / "capacity.png").stat().st_size > 1000


def test_a_variant_climbs_beside_both_services_against_the_same_reference(
    tmp_path: Path,
) -> None:
    log = tmp_path / "querylog.json"
    log.write_text(json.dumps({"queries": [{"q": "a", "k": 10, "weight": 1}]}))
    caps = {("service", "unique"): 330, ("reference", "unique"): 150, ("old", "unique"): 110}

    def run(spec: StepSpec, name: str) -> StepMeasure:
        service = spec.base_url.removeprefix("http://")
        ok = spec.rate <= caps[(service, "unique")]
        return StepMeasure(spec.rate, spec.planned, float(spec.rate), 5.0, 9.0,
                           40.0 if ok else 400.0, 0.0, 0, False, ok)  # fmt: skip

    config = CapacityConfig(
        mixes=("unique",), repeat=1, measure_s=1.0, warmup_s=0,
        variants=(Variant("old", (("SEARCH_BATCH_MAX_WAIT_MS", "5"),)),),
    )  # fmt: skip
    assert config.services == ("service", "reference", "old")
    urls = {s: f"http://{s}" for s in config.services}
    points = CapacityRun(config, urls, log, tmp_path, run, lambda _m: None).run()
    rows = {r.service: r for r in summarise(points, config.start_rate)}
    assert list(rows) == ["service", "reference", "old"]
    old = rows["old"].ratio
    assert old is not None
    assert old.median == rows["old"].capacity_rps.median / 150
    with pytest.raises(ConfigError, match="--variant"):
        CapacityConfig(variants=(Variant("reference"),))
    with pytest.raises(ConfigError, match="--variant"):
        CapacityConfig(variants=(Variant("x", (("DATABASE_URL", "postgres://elsewhere"),)),))


def test_a_sweep_without_a_reference_is_refused_before_it_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no reference service .*\[capacity\] reference_app"):
        execute(CapacityConfig(reference_app=None), tmp_path / "out", print)
    assert not (tmp_path / "out").exists()


def test_a_reference_app_must_name_a_factory() -> None:
    with pytest.raises(
        ConfigError, match="--reference-app = 'benchmarks': must be an ASGI factory"
    ):
        CapacityConfig(reference_app="benchmarks")
