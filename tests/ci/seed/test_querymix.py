"""All-unique queries: deterministic, never repeated, shaped like the Zipf log's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.errors import SeedError
from ci.seed.querylog import generate_query_log
from ci.seed.querymix import CAPACITY, suffix, unique_queries, write_query_file


def _norm(text: str) -> str:
    return " ".join(text.lower().split())  # the service's cache-key normalisation


def test_no_text_repeats_and_none_is_a_log_entry() -> None:
    queries = unique_queries(42, 0, 20_000)
    texts = [_norm(q["q"]) for q in queries]
    assert len(set(texts)) == len(texts)
    log = {_norm(q["q"]) for q in generate_query_log(42)["queries"]}
    assert not log & set(texts)


def test_slices_are_the_same_sequence_whatever_their_sizes() -> None:
    whole = unique_queries(7, 0, 300)
    parts = unique_queries(7, 0, 120) + unique_queries(7, 120, 1) + unique_queries(7, 121, 179)
    assert parts == whole
    assert unique_queries(8, 0, 300) != whole  # another seed, another sequence


def test_the_mix_of_k_and_topic_filters_is_the_logs() -> None:
    queries = unique_queries(1, 0, 5000)
    assert {q["k"] for q in queries} == {10, 20, 50, 100}
    assert 0.5 < sum(q["k"] == 10 for q in queries) / len(queries) < 0.65  # 4 of 7
    filtered = sum(q["topic"] is not None for q in queries) / len(queries)
    assert 0.07 < filtered < 0.13
    assert all(q["weight"] == 1.0 for q in queries)


def test_suffix_is_a_bijection_at_the_edges() -> None:
    ends = [suffix(p) for p in (0, 1, CAPACITY - 2, CAPACITY - 1)]
    assert len(set(ends)) == 4
    assert all(len(s.split()) == 3 for s in ends)
    with pytest.raises(SeedError, match="outside"):
        suffix(CAPACITY)
    with pytest.raises(SeedError, match="outside"):
        unique_queries(1, CAPACITY - 1, 2)


def test_query_file_has_the_query_log_format(tmp_path: Path) -> None:
    path = write_query_file(tmp_path / "q.json", unique_queries(1, 0, 3), seed=1, start=0)
    doc = json.loads(path.read_text())
    assert doc["distinct"] == 3
    assert doc["seed"] == 1
    assert doc["version"] == 1
    assert [q["q"] for q in doc["queries"]] == [q["q"] for q in unique_queries(1, 0, 3)]
    with pytest.raises(SeedError, match="no queries"):
        write_query_file(tmp_path / "empty.json", [])
