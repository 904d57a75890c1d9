"""``perfci chaos``: short versions of every experiment on a stack of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.experiments.chaos import ChaosConfig, Outcome, run_chaos
from ci.render.chaos import chaos_table


def test_an_unmet_expectation_fails_the_outcome_and_shows_in_the_table(tmp_path: Path) -> None:
    good = Outcome("valkey", 10, 0, {"200": 10}, {"down_s": 1.0}, {"no failed requests": True})
    bad = Outcome("worker", 10, 9, {"0": 9, "200": 1}, {}, {"failures bounded": False})
    assert good.ok
    assert not bad.ok
    table = chaos_table(ChaosConfig(out_dir=tmp_path, rate=5, duration_s=2), [good, bad])
    assert "| valkey | 10 | 0 | 200: 10 | down_s 1.0 | ok no failed requests |" in table
    assert "| worker | 10 | 9 | 0: 9, 200: 1 |  | FAILED failures bounded |" in table


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_experiment_meets_its_expectation(tmp_path: Path) -> None:
    cfg = ChaosConfig(out_dir=tmp_path, rate=25, duration_s=7, fault_at_s=2, driver="httpx")
    outcomes = {o.name: o for o in run_chaos(cfg)}
    assert list(outcomes) == ["valkey", "postgres", "worker", "slowdb"]
    failed = {n: o.checks for n, o in outcomes.items() if not o.ok}
    assert not failed, failed
    # each fault really happened and was seen by the clients
    assert outcomes["valkey"].figures["redis_errors"] != 0
    assert outcomes["postgres"].statuses.get("503", 0) > 0
    assert outcomes["worker"].figures["replaced_s"] is not None
    assert outcomes["slowdb"].statuses == {"503": outcomes["slowdb"].requests}
    doc = json.loads((tmp_path / "chaos.json").read_text())
    assert [e["ok"] for e in doc["experiments"]] == [True] * 4
    assert (tmp_path / "chaos.md").read_text().count("\n| ") == 5
