from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ci.errors import ResultsError
from ci.results import (
    SCHEMA_VERSION,
    AllocationSite,
    Diagnostics,
    LatencyHistogram,
    ProfileLink,
    RunResults,
    ScenarioStatements,
    Statement,
    dump_results,
    load_results,
)

ResultsDictFactory = Callable[..., dict[str, Any]]


def test_model_fields(results_dict: ResultsDictFactory) -> None:
    r = RunResults.from_dict(results_dict())
    assert r.scenario_names == ("search", "stream")
    search = r.scenario("search")
    assert search.latency_ms.maximum == 400.0
    assert search.cache is not None
    assert search.cache.hit_ratio == 0.8
    assert r.scenario("stream").cache is None
    assert r.run.machine.machine_class == "2cpu-24gb-x86_64"
    with pytest.raises(KeyError, match="no scenario 'nope'"):
        r.scenario("nope")


def test_optional_memory_and_benchmarks(results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    data["scenarios"][0]["memory"] = {
        "rss_slope_mb_per_10min": 1.5,
        "ci_low": 0.5,
        "ci_high": 2.5,
        "leaking": False,
    }
    del data["scenarios"][1]["memory"]
    data["benchmarks"] = [
        {"name": "test_embed", "group": None, "median_s": 0.01, "iqr_s": 0.001, "rounds": 20}
    ]
    r = RunResults.from_dict(data)
    assert r.scenarios[0].memory is not None
    assert r.scenarios[0].memory.rss_slope_mb_per_10min == 1.5
    assert r.scenarios[1].memory is None
    assert r.benchmarks is not None
    assert r.benchmarks[0].name == "test_embed"
    assert RunResults.from_dict(r.to_dict()) == r


def _diagnostics() -> Diagnostics:
    return Diagnostics(
        profiles=(
            ProfileLink("search: CPU flamegraph of pid 7", "search.cpu.7.svg"),
            ProfileLink("EXPLAIN (ANALYZE, BUFFERS) of the search", "explain.txt"),
        ),
        allocation_sites=(AllocationSite("service/cache.py", 88, 512.0, 256.5, 1200, 3000),),
        allocation_pid=7,
        explain="SET LOCAL hnsw.ef_search = 80;\nLimit  (cost=0.1..2.0 rows=10)",
        statements=(
            ScenarioStatements(
                "search", (Statement("SELECT id FROM documents LIMIT $2", 600, 1200.0, 2.0, 6000),)
            ),
            ScenarioStatements("stream", ()),
        ),
        problems=("stream: py-spy wrote no flamegraph for pid 7 (see its .log)",),
    )


def test_new_results_are_version_3_with_diagnostics(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    v1 = RunResults.from_dict(results_dict())
    assert v1.schema_version == 1
    assert v1.diagnostics is None
    new = RunResults(run=v1.run, scenarios=v1.scenarios, diagnostics=_diagnostics())
    assert new.schema_version == SCHEMA_VERSION == 3
    target = tmp_path / "results.json"
    dump_results(new, target)
    back = load_results(target)
    assert back == new
    assert back.diagnostics is not None
    assert back.diagnostics.statements[0].top[0].calls == 600
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert next(iter(doc)) == "schema_version"
    assert doc["diagnostics"]["profiles"][1] == {
        "label": "EXPLAIN (ANALYZE, BUFFERS) of the search",
        "path": "explain.txt",
    }
    assert doc["diagnostics"]["allocation_sites"][0]["count_diff"] == 1200


def test_version_2_without_diagnostics_reads_as_none(results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    data["schema_version"] = 2
    assert RunResults.from_dict(data).diagnostics is None
    data["diagnostics"] = None
    r = RunResults.from_dict(data)
    assert r.diagnostics is None
    assert r.to_dict()["diagnostics"] is None


def test_version_1_stays_version_1_and_cannot_carry_diagnostics(
    results_dict: ResultsDictFactory,
) -> None:
    data = results_dict()
    r = RunResults.from_dict(data)
    assert "diagnostics" not in r.to_dict()
    assert r.to_dict() == data
    data["diagnostics"] = json.loads(msgspec.json.encode(Diagnostics()))
    with pytest.raises(
        ResultsError, match=r"v1\.json: \$\.diagnostics: schema_version 1 has no diagnostics"
    ):
        RunResults.from_dict(data, "v1.json")


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../outside.txt", "a/../../b", "javascript:alert(1)", "", ".hidden"],
)
def test_profile_links_stay_inside_the_run_folder(
    results_dict: ResultsDictFactory, path: str
) -> None:
    # The report links to these paths: a hostile results.json must not point anywhere else.
    data = results_dict()
    data["schema_version"] = 2
    diagnostics = Diagnostics(profiles=(ProfileLink("x", path),))
    data["diagnostics"] = json.loads(msgspec.json.encode(diagnostics))
    with pytest.raises(ResultsError, match=r"\$\.diagnostics\.profiles\[0\]\.path"):
        RunResults.from_dict(data)


def test_version_3_carries_a_latency_histogram(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    data = results_dict()
    data["schema_version"] = 3
    data["scenarios"][0]["latency_histogram"] = {"edges_ms": [1.0, 2.0, 4.0], "counts": [5, 7]}
    results = RunResults.from_dict(data)
    hist = results.scenarios[0].latency_histogram
    assert hist == LatencyHistogram((1.0, 2.0, 4.0), (5, 7))
    assert results.scenarios[1].latency_histogram is None
    target = tmp_path / "results.json"
    dump_results(results, target)
    assert load_results(target) == results


@pytest.mark.parametrize(
    ("version", "histogram", "message"),
    [
        (2, {"edges_ms": [1.0, 2.0], "counts": [1]}, "schema_version 2 has no latency histogram"),
        (3, {"edges_ms": [1.0, 2.0, 3.0], "counts": [1]}, "3 edges for 1 bins"),
        (3, {"edges_ms": [1.0, 1.0], "counts": [1]}, "must increase"),
        (3, {"edges_ms": [0.0, 1.0], "counts": [1]}, "latency_histogram"),
        (3, {"edges_ms": [1.0, 2.0], "counts": [-1]}, "latency_histogram"),
    ],
)
def test_a_bad_latency_histogram_is_refused(
    results_dict: ResultsDictFactory, version: int, histogram: dict[str, object], message: str
) -> None:
    data = results_dict()
    data["schema_version"] = version
    data["scenarios"][0]["latency_histogram"] = histogram
    with pytest.raises(ResultsError, match=message):
        RunResults.from_dict(data, "r.json")


def test_older_versions_are_written_without_the_histogram_key(
    results_dict: ResultsDictFactory,
) -> None:
    v2 = msgspec.structs.replace(RunResults.from_dict(results_dict()), schema_version=2)
    assert all("latency_histogram" not in s for s in v2.to_dict()["scenarios"])
