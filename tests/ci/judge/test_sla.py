from __future__ import annotations

import dataclasses
from collections.abc import Callable

import msgspec
import pytest

from ci.judge.sla import SlaPairCheck, check_sla, check_sla_against_base
from ci.results import MemoryGrowth, RunResults
from ci.settings import repo_sla

RunFactory = Callable[..., RunResults]
SLA = repo_sla()


def test_sla_gates(make_run: RunFactory) -> None:
    ok = check_sla([make_run("a"), make_run("b")], SLA)
    assert {(c.scenario, c.name) for c in ok} == {
        ("search", "p95_ms"),
        ("search", "p99_ms"),
        ("search", "error_rate"),
        ("search", "ttfe_p95_ms"),
        ("search", "cache_hit_ratio"),
        ("stream", "p95_ms"),
        ("stream", "p99_ms"),
        ("stream", "error_rate"),
        ("stream", "ttfe_p95_ms"),
    }
    assert all(c.status == "pass" and c.runs == 2 for c in ok)
    bad = check_sla([make_run("a", latency=30.0, error_rate=0.01, hit_ratio=0.5)], SLA)
    failed = {(c.scenario, c.name) for c in bad if c.status == "fail"}
    assert ("search", "p95_ms") in failed
    assert ("search", "p99_ms") in failed
    assert ("search", "error_rate") in failed
    assert ("search", "cache_hit_ratio") in failed
    p95 = next(c for c in bad if c.name == "p95_ms" and c.scenario == "search")
    assert p95.value == pytest.approx(3000.0)
    assert p95.limit == 2000.0
    assert p95.comparator == "<"
    # The boundary itself fails: "p95 < 2000" must hold.
    edge = check_sla([make_run("e", latency=20.0)], SLA)
    assert next(c for c in edge if c.name == "p95_ms").status == "fail"


def test_sla_judges_time_to_first_event_and_the_spike_error_budget(
    make_run: RunFactory,
) -> None:
    run = make_run("a")

    def with_ttfe(factor: float) -> RunResults:
        return msgspec.structs.replace(
            run,
            scenarios=tuple(
                msgspec.structs.replace(
                    s,
                    ttfe_ms=msgspec.structs.replace(s.ttfe_ms, p95=SLA.ttfe_p95_ms * factor),
                )
                if s.ttfe_ms is not None
                else s
                for s in run.scenarios
            ),
        )

    def ttfe(r: RunResults) -> set[str]:
        return {c.status for c in check_sla([r], SLA) if c.name == "ttfe_p95_ms"}

    assert ttfe(with_ttfe(0.5)) == {"pass"}
    assert ttfe(with_ttfe(1.5)) == {"fail"}
    no_ttfe = msgspec.structs.replace(
        run, scenarios=tuple(msgspec.structs.replace(s, ttfe_ms=None) for s in run.scenarios)
    )
    assert ttfe(no_ttfe) == set()

    # the spike sheds within spike_error_rate (above error_rate): it passes on its own budget
    def named(name: str, error_rate: float) -> RunResults:
        r = make_run(name, error_rate=error_rate)
        return msgspec.structs.replace(
            r, scenarios=(msgspec.structs.replace(r.scenarios[0], name=name),)
        )

    shed = (SLA.error_rate + SLA.spike_error_rate) / 2
    checks = {c.name: c for c in check_sla([named("spike", shed)], SLA)}
    assert "error_rate" not in checks
    assert checks["spike_error_rate"].status == "pass"
    assert checks["spike_error_rate"].limit == SLA.spike_error_rate
    over = check_sla([named("spike", SLA.spike_error_rate * 2)], SLA)
    assert next(c for c in over if c.name == "spike_error_rate").status == "fail"
    # any other scenario keeps the stricter error_rate
    ramp = check_sla([named("ramp", shed)], SLA)
    assert next(c for c in ramp if c.name == "error_rate").status == "fail"


def test_sla_hit_ratio_needs_a_warm_cache(make_run: RunFactory) -> None:
    """A cold cache over a short scenario is reported as skipped, never as a pass or a fail."""
    run = make_run("a", hit_ratio=0.4)
    cold = msgspec.structs.replace(
        run,
        scenarios=tuple(
            msgspec.structs.replace(s, cache=msgspec.structs.replace(s.cache, hits=400, misses=600))
            if s.cache is not None
            else s
            for s in run.scenarios
        ),
    )
    check = next(c for c in check_sla([cold], SLA) if c.name == "cache_hit_ratio")
    assert check.status == "skipped"
    assert check.message == (
        "1000 lookups < sla.cache_hit_min_lookups 2000: the cache is still warming up"
    )
    lenient = dataclasses.replace(SLA, cache_hit_min_lookups=1000)
    assert next(c for c in check_sla([cold], lenient) if c.name == "cache_hit_ratio").status == (
        "fail"
    )
    # Only the warm runs are judged when some runs are warm and others are not.
    warm = make_run("b", hit_ratio=0.9)
    mixed = next(c for c in check_sla([cold, warm], SLA) if c.name == "cache_hit_ratio")
    assert (mixed.status, mixed.runs, mixed.value) == ("pass", 1, 0.9)
    # a skipped limit fails nothing
    assert all(c.status != "fail" for c in check_sla([cold], SLA))


def test_sla_memory_growth(make_run: RunFactory) -> None:
    run = make_run("a")

    def with_memory(slope: float, leaking: bool) -> RunResults:
        mem = MemoryGrowth(slope, slope - 1, slope + 1, leaking)
        return msgspec.structs.replace(
            run, scenarios=tuple(msgspec.structs.replace(s, memory=mem) for s in run.scenarios)
        )

    def status(r: RunResults) -> str:
        return next(c.status for c in check_sla([r], SLA) if c.name == "rss_slope_mb_per_10min")

    assert status(with_memory(1.0, False)) == "pass"
    assert status(with_memory(6.0, False)) == "fail"
    leak = next(c for c in check_sla([with_memory(1.0, True)], SLA) if c.name.startswith("rss"))
    assert leak.status == "fail"
    assert leak.message == "leak detected in 1 of 1 run(s)"
    assert not any(c.name.startswith("rss") for c in check_sla([run], SLA))


# -- the SLA against the base (the PR gate) ------------------------------------------------


def _pair(base: RunResults, cand: RunResults, name: str, scenario: str = "search") -> SlaPairCheck:
    checks = check_sla_against_base([base], [cand], SLA)
    return next(c for c in checks if c.name == name and c.scenario == scenario)


def test_a_breach_both_sides_share_is_pre_existing(make_run: RunFactory) -> None:
    base = make_run("b", error_rate=0.01)
    cand = make_run("c", error_rate=0.0105)  # within the error rate's margin: its limit, 0.001
    c = _pair(base, cand, "error_rate")
    assert c.status == "pre-existing"
    assert c.base == pytest.approx(0.01)
    assert c.message is not None
    assert "pre-existing, does not block" in c.message
    latency = _pair(make_run("b", latency=30.0), make_run("c", latency=31.0), "p95_ms")
    assert latency.status == "pre-existing"  # +3.3 %, within both_breach_margin's 5 %


def test_a_breach_only_the_candidate_has_fails(make_run: RunFactory) -> None:
    c = _pair(make_run("b"), make_run("c", error_rate=0.01), "error_rate")
    assert c.status == "fail"
    assert c.message is not None
    assert "the candidate breaches it" in c.message
    assert "the base does not" in c.message


def test_a_shared_breach_clearly_worse_fails(make_run: RunFactory) -> None:
    errors = _pair(make_run("b", error_rate=0.01), make_run("c", error_rate=0.02), "error_rate")
    assert errors.status == "fail"
    assert errors.message is not None
    assert "clearly worse" in errors.message
    latency = _pair(make_run("b", latency=30.0), make_run("c", latency=40.0), "p95_ms")
    assert latency.status == "fail"


def test_the_margin_is_relative_and_read_from_the_sla(make_run: RunFactory) -> None:
    # hit ratio (higher is better): 0.5 / 1.05 = 0.476 is the edge
    assert _pair(make_run("b", hit_ratio=0.5), make_run("c", hit_ratio=0.48),
                 "cache_hit_ratio").status == "pre-existing"  # fmt: skip
    assert _pair(make_run("b", hit_ratio=0.5), make_run("c", hit_ratio=0.45),
                 "cache_hit_ratio").status == "fail"  # fmt: skip
    wide = dataclasses.replace(SLA, both_breach_margin=0.5)
    base, cand = make_run("b", latency=30.0), make_run("c", latency=40.0)
    checks = check_sla_against_base([base], [cand], wide)
    p95 = next(c for c in checks if (c.scenario, c.name) == ("search", "p95_ms"))
    assert p95.status == "pre-existing"  # +33 %, within a 50 % margin


def test_the_candidate_keeping_a_limit_the_base_breaks_passes(make_run: RunFactory) -> None:
    c = _pair(make_run("b", error_rate=0.01), make_run("c"), "error_rate")
    assert c.status == "pass"
    assert c.message is not None
    assert "the base breached it" in c.message


def test_a_skipped_limit_stays_skipped(make_run: RunFactory) -> None:
    run = make_run("a", hit_ratio=0.4)
    cold = msgspec.structs.replace(
        run,
        scenarios=tuple(
            msgspec.structs.replace(s, cache=msgspec.structs.replace(s.cache, hits=400, misses=600))
            if s.cache is not None
            else s
            for s in run.scenarios
        ),
    )
    c = _pair(cold, cold, "cache_hit_ratio")
    assert c.status == "skipped"
