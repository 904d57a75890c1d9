from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ci.errors import RenderError, ResultsError
from ci.render.report import rerender_run
from ci.results import (
    AllocationSite,
    Diagnostics,
    ProfileLink,
    ScenarioStatements,
    Statement,
    dump_results,
    load_results,
)

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
BASE = sorted((RESOURCES / "results").glob("base-*.json"))

DIAGNOSTICS = Diagnostics(
    profiles=(
        ProfileLink("search: CPU flamegraph of pid 4242", "search.cpu.4242.svg"),
        ProfileLink("EXPLAIN (ANALYZE, BUFFERS) of the search", "explain.txt"),
        ProfileLink("tracemalloc: allocation growth (JSON)", "tracemalloc.json"),
    ),
    allocation_sites=(AllocationSite("service/search.py", 123, 2048.0, 1536.5, 4321, 9000),),
    allocation_pid=4242,
    explain="-- index mode hnsw, k = 10\nSET LOCAL hnsw.ef_search = 80;\nLimit <plan>",
    statements=(
        ScenarioStatements(
            "search",
            (
                Statement(
                    "SELECT id, title FROM documents ORDER BY e LIMIT $2", 77, 9.5, 0.123, 770
                ),
            ),
        ),
    ),
    problems=("stream: pg_stat_statements could not be read: <boom>",),
)


def _run_folder(tmp_path: Path) -> Path:
    """A run folder as `perfci run` leaves it, built from a recorded v1 results file."""
    run_dir = tmp_path / "20261127T100000Z-pr"
    run_dir.mkdir()
    v1 = load_results(BASE[0])
    results = msgspec.structs.replace(v1, schema_version=2, diagnostics=DIAGNOSTICS)
    dump_results(results, run_dir / "results.json")
    (run_dir / "explain.txt").write_text(DIAGNOSTICS.explain or "")
    (run_dir / "search.cpu.4242.svg").write_text("<svg/>")
    return run_dir  # tracemalloc.json is missing on purpose


def test_rerender_run_from_the_folder_alone(tmp_path: Path) -> None:
    run_dir = _run_folder(tmp_path)
    assert not (run_dir / "report.html").exists()
    path = rerender_run(run_dir)
    assert path == run_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    assert "Performance run base-1" in html
    assert '<a href="search.cpu.4242.svg">search: CPU flamegraph of pid 4242</a>' in html
    assert '<a href="explain.txt">' in html
    assert "tracemalloc.json: not in this folder" in html
    assert '<a href="tracemalloc.json"' not in html
    assert "service/search.py:123" in html
    assert "pid 4242" in html
    assert "1536.5" in html
    assert "Top statements: search (pg_stat_statements)" in html
    assert "SELECT id, title FROM documents ORDER BY e LIMIT $2" in html
    assert "SET LOCAL hnsw.ef_search = 80;" in html
    assert "Limit &lt;plan&gt;" in html  # escaped
    assert "pg_stat_statements could not be read: &lt;boom&gt;" in html
    # The same folder renders the same report again.
    first = html
    path.unlink()
    assert rerender_run(run_dir).read_text(encoding="utf-8") == first


def test_rerender_run_of_a_version_1_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "results.json").write_bytes(BASE[0].read_bytes())
    html = rerender_run(run_dir).read_text(encoding="utf-8")
    assert "Performance run base-1" in html
    assert "Profiles and plans" not in html


def test_rerender_run_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="not a folder"):
        rerender_run(tmp_path / "absent")
    with pytest.raises(ResultsError, match=r"results\.json: cannot read"):
        rerender_run(tmp_path)
