"""The bursts of benchmarks/sse_scale.py: the storm's share of distinct queries."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from benchmarks.sse_scale import BurstShape, storm_paths


def _log(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "queries.json"
    queries = [
        {"q": f"query {i}", "k": 10, "topic": None, "weight": 1.0 / (i + 1)} for i in range(n)
    ]
    path.write_text(json.dumps({"queries": queries}))
    return path


def _texts(paths: list[str]) -> list[str]:
    return [parse_qs(urlsplit(p).query)["q"][0] for p in paths]


def test_a_storm_asks_the_share_of_distinct_queries_and_repeats_only_those(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path, 2000)
    paths = storm_paths(log, 2000, 200, seed=1, distinct=0.65)
    texts = _texts(paths)
    assert len(texts) == 2000
    assert len(set(texts)) == 1300
    assert set(texts) <= {f"query {i}" for i in range(2000)}
    assert all(parse_qs(urlsplit(p).query)["k"] == ["200"] for p in paths)
    assert storm_paths(log, 2000, 200, seed=1, distinct=0.65) == paths  # seeded
    assert BurstShape("storm", distinct=0.65).paths(log, 2000, 200, 1) == paths


def test_a_storm_larger_than_the_query_log_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs 1300 distinct queries, the query log has 100"):
        storm_paths(_log(tmp_path, 100), 2000, 200, seed=1, distinct=0.65)
