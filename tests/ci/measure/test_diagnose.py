"""``perfci run --profile-cpu --profile-memory``: profiles, allocation growth, plans, statements."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ci import stack
from ci.measure.diagnose import Statement, find_py_spy, top_statements
from ci.measure.profiles import PROFILES
from ci.measure.run import RunRequest, execute
from ci.settings import StackSettings


def test_top_statements_are_deltas_ranked_by_total_time() -> None:
    before = {1: ("SELECT a", 10, 100.0, 10), 2: ("SELECT b", 5, 5.0, 5)}
    after = {
        1: ("SELECT a", 20, 150.0, 20),  # +10 calls, +50 ms
        2: ("SELECT  b", 5, 5.0, 5),  # idle during the interval: left out
        3: ("SELECT\n c", 4, 80.0, 4),  # new: +4 calls, +80 ms
    }
    assert top_statements(before, after) == [
        Statement("SELECT c", 4, 80.0, 20.0, 4),
        Statement("SELECT a", 10, 50.0, 5.0, 10),
    ]


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.skipif(find_py_spy() is None, reason="py-spy is not installed")
def test_profiles_plan_and_allocations_are_written_and_linked(tmp_path: Path) -> None:
    profile = dataclasses.replace(
        PROFILES["test"], name="diag", scenarios=("vegeta",), vu_scale=1.0, rate=30, attack_s=8,
        docs=2000,
    )  # fmt: skip
    settings = StackSettings(
        run_dir=tmp_path / "stack",
        pg_port=stack.free_port(),
        redis_port=stack.free_port(),
        service_port=stack.free_port(),
        service_env={"SEARCH_INDEX_MODE": "hnsw"},
    )
    request = RunRequest(
        profile, profile.scenarios, tmp_path / "reports", settings,
        profile_cpu=True, profile_memory=True,
    )  # fmt: skip
    try:
        outcome = execute(request, lambda _m: None)
    finally:
        # as root PostgreSQL's data lives under /var/tmp (~250 MB a stack): drop it
        shutil.rmtree(stack.pg_home(settings.run_dir), ignore_errors=True)
    run_dir = outcome.run_dir
    diag = outcome.diagnostics
    assert diag.problems == ()
    report = (run_dir / "report.html").read_text()

    svgs = sorted(run_dir.glob("vegeta.cpu.*.svg"))
    speedscope = sorted(run_dir.glob("vegeta.cpu.*.speedscope.json"))
    assert svgs, "no flame graph"
    assert speedscope, "no speedscope profile"
    assert "<svg" in svgs[0].read_text()[:2000]
    assert json.loads(speedscope[0].read_text())["profiles"]
    for f in (*svgs, *speedscope):
        assert f'href="{f.name}"' in report

    top = json.loads((run_dir / "tracemalloc.json").read_text())
    assert top["compare"] is True
    assert top["sites"], "no allocation sites"
    assert 'href="tracemalloc.json"' in report
    assert "Allocation growth" in report

    plan = (run_dir / "explain.txt").read_text()
    assert "SET LOCAL hnsw.ef_search = 40" in plan
    assert "Buffers:" in plan
    assert "Execution Time" in plan
    assert "documents_hnsw" in plan, "the HNSW index must serve the search"
    assert 'href="explain.txt"' in report

    ((name, statements),) = diag.statements
    assert name == "vegeta"
    assert any("ORDER BY" in s.query and s.calls > 0 for s in statements)
    assert "Top statements: vegeta" in report
