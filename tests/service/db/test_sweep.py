"""``python -m service.db.sweep``: request checking, and a real sweep on a database of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ci.seed import seed_corpus
from service.db.contract import IndexConfig
from service.db.sweep import BadRequest, Variant, parse_request
from tests.harness import Servers

ROOT = Path(__file__).resolve().parents[3]


def _request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "database_url": "postgresql://postgres@127.0.0.1:1/x",
        "variants": [{"method": "hnsw", "vector_type": "vector", "m": 8, "ef_construction": 32}],
        "knobs": {"hnsw": [10, 40], "ivfflat": [1]},
    }
    return {**base, **overrides}


def _run(request: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
    text = request if isinstance(request, str) else json.dumps(request)
    return subprocess.run(
        [sys.executable, "-m", "service.db.sweep"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )


def test_a_request_is_parsed_with_defaults() -> None:
    req = parse_request(json.dumps(_request()))
    assert req.variants == (Variant(IndexConfig("hnsw", "vector", m=8, ef_construction=32)),)
    assert req.knobs == {"hnsw": (10, 40), "ivfflat": (1,)}
    assert (req.queries, req.concurrency, req.seed, req.drop_existing) == (200, (1, 4, 8), 1, False)
    assert req.variants[0].name == "sweep_hnsw_vector_m8_efc32"
    assert req.variants[0].ddl() == (
        "CREATE INDEX sweep_hnsw_vector_m8_efc32 ON documents USING hnsw "
        "((embedding) vector_cosine_ops) WITH (m = 8, ef_construction = 32)"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variants": []}, "variants: expected a non-empty list"),
        ({"variants": [{"method": "flat"}]}, "variants[0].method='flat'"),
        ({"variants": [{"method": "hnsw", "m": 0}]}, "variants[0].m=0"),
        ({"variants": [{"method": "ivfflat", "colour": 1}]}, "variants[0].colour: unknown key"),
        ({"knobs": {"hnsw": [0]}}, "knobs.hnsw=[0]"),
        ({"knobs": {"ivfflat": [1]}}, "knobs.hnsw: missing"),
        ({"concurrency": []}, "concurrency: expected a non-empty list"),
        ({"queries": "many"}, "queries='many'"),
        ({"extra": 1}, "extra: unknown key"),
        ({"database_url": ""}, "database_url: expected a non-empty string"),
    ],
)
def test_bad_requests_name_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_request(json.dumps(_request(**overrides)))
    assert message in str(err.value)


def test_bad_input_exits_2_with_one_line() -> None:
    proc = _run("not json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: the request is not valid JSON")
    assert proc.stderr.count("\n") == 1


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_sweep_measures_each_variant_and_drops_it(servers: Servers, tmp_path: Path) -> None:
    admin = await asyncpg.connect(servers.database_url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS sweep_test")
        await admin.execute("CREATE DATABASE sweep_test")
    finally:
        await admin.close()
    url = servers.database_url.rsplit("/", 1)[0] + "/sweep_test"
    # exact mode: the loader builds no ANN index, so the planner has only the sweep's
    seed_corpus(tmp_path, url, 2000, 3, {"SEARCH_EMBEDDER": "hash", "SEARCH_INDEX_MODE": "exact"})
    request = _request(
        database_url=url,
        variants=[
            {"method": "hnsw", "vector_type": "vector", "m": 8, "ef_construction": 32},
            {"method": "ivfflat", "vector_type": "halfvec", "lists": 10},
        ],
        knobs={"hnsw": [10, 100], "ivfflat": [1, 10]},
        queries=40,
        concurrency=[1, 2],
    )
    proc = _run(request)
    assert proc.returncode == 0, proc.stderr
    points = json.loads(proc.stdout)
    assert [(p["variant"], p["knob"], p["value"]) for p in points] == [
        ("sweep_hnsw_vector_m8_efc32", "ef_search", 10),
        ("sweep_hnsw_vector_m8_efc32", "ef_search", 100),
        ("sweep_ivfflat_halfvec_l10", "probes", 1),
        ("sweep_ivfflat_halfvec_l10", "probes", 10),
    ]
    for p in points:
        assert set(p["qps"]) == {"1", "2"}
        assert 0 < p["recall_at_10"] <= 1
        assert p["p50_ms"] <= p["p99_ms"]
        assert p["index_mb"] > 0
    assert points[1]["recall_at_10"] >= points[0]["recall_at_10"]
    assert points[3]["recall_at_10"] >= points[2]["recall_at_10"]
    assert points[3]["recall_at_10"] > 0.9  # all lists probed: near exact (halfvec aside)
    assert "building sweep_hnsw_vector_m8_efc32" in proc.stderr
    conn = await asyncpg.connect(url)
    try:
        left = await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'sweep_%'")
    finally:
        await conn.close()
    assert left == 0
