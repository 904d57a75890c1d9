"""``perfci run --profile-cpu --profile-memory``: profiles, allocation growth, plans, statements."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ci import stack
from ci.cli import main
from ci.measure.diagnose import find_py_spy, top_statements
from ci.measure.profiles import PROFILES
from ci.measure.run import RunRequest, execute
from ci.render.report import rerender_run
from ci.results import Statement, load_results
from ci.settings import StackSettings
from service.settings import Settings as ServiceSettings


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
        docs=5000,  # at 2000 the planner scans the table at the service's ef_search (80)
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
    rerender_run(run_dir)  # what `perfci run` does after measuring
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
    assert f"SET LOCAL hnsw.ef_search = {ServiceSettings().hnsw_ef_search};" in plan
    assert "Buffers:" in plan
    assert "Execution Time" in plan
    assert "documents_hnsw" in plan, "the HNSW index must serve the search"
    assert 'href="explain.txt"' in report

    (group,) = diag.statements
    name, statements = group.scenario, group.top
    assert name == "vegeta"
    assert any("ORDER BY" in s.query and s.calls > 0 for s in statements)
    assert "Top statements: vegeta" in report


def _explained_ef_search(run_root: Path) -> str:
    """``perfci run --profile test`` (vegeta only); the run's explain.txt line for ef_search."""
    code = main(["run", "--profile", "test", "--scenario", "vegeta", "--out", str(run_root)])
    assert code in (0, 1)  # 1: a threshold failed, still a run
    (run_dir,) = [p for p in run_root.iterdir() if p.is_dir()]
    plan = (run_dir / "explain.txt").read_text()
    (line,) = [ln for ln in plan.splitlines() if "hnsw.ef_search" in ln]
    diagnostics = load_results(run_dir / "results.json").diagnostics
    assert diagnostics is not None
    assert diagnostics.explain is not None
    assert line in diagnostics.explain  # results.json holds what the report shows
    # `perfci report DIR` renders the same report again from the folder alone
    report = (run_dir / "report.html").read_text()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text() == report
    return line


@pytest.fixture
def fresh_stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERFCI_HOME", str(tmp_path / "stack"))
    for name in ("PERFCI_PG_PORT", "PERFCI_REDIS_PORT", "PERFCI_SERVICE_PORT"):
        monkeypatch.setenv(name, str(stack.free_port()))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("override", [None, "123"])
def test_explain_shows_the_ef_search_the_service_uses(
    fresh_stack_env: Path, monkeypatch: pytest.MonkeyPatch, override: str | None
) -> None:
    if override is None:
        monkeypatch.delenv("SEARCH_HNSW_EF_SEARCH", raising=False)
        expected = str(ServiceSettings().hnsw_ef_search)
    else:
        monkeypatch.setenv("SEARCH_HNSW_EF_SEARCH", override)
        expected = override
    monkeypatch.setenv("SEARCH_INDEX_MODE", "hnsw")
    try:
        line = _explained_ef_search(fresh_stack_env / "reports")
    finally:
        shutil.rmtree(stack.pg_home(fresh_stack_env / "stack"), ignore_errors=True)
    assert line == f"SET LOCAL hnsw.ef_search = {expected};"
