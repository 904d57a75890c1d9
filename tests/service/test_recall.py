"""Recall@10 of the ANN indexes against the exact scan, on a clustered 20k corpus."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ci.seed import SeedResult
from service.db import Database
from service.embed import hash_embed
from service.metrics import Metrics
from service.settings import Settings
from tests.conftest import Servers

pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]

QUERIES = 200


async def _top10(settings: Settings, vectors: np.ndarray) -> list[set[int]]:
    db = await Database.open(settings, Metrics())
    try:
        return [{h.id for h in await db.search(v, 10)} for v in vectors]
    finally:
        await db.close()


@pytest.mark.parametrize(("mode", "floor"), [("hnsw", 0.95), ("ivfflat", 0.95)])
async def test_ann_recall_at_10(
    servers: Servers, corpus: SeedResult, mode: str, floor: float
) -> None:
    log = json.loads(corpus.query_log_path.read_text())
    texts = [q["q"] for q in log["queries"][:QUERIES]]
    vectors = hash_embed(texts)
    base = Settings(database_url=servers.database_url, embedder="hash")
    exact = await _top10(dataclasses.replace(base, index_mode="exact"), vectors)
    ann = await _top10(dataclasses.replace(base, index_mode=mode), vectors)  # type: ignore[arg-type]  # parametrized literal
    recall = float(np.mean([len(a & e) / len(e) for a, e in zip(ann, exact, strict=True)]))
    assert recall >= floor, f"{mode} recall@10 {recall:.3f} < {floor}"


@pytest.mark.parametrize("mode", ["hnsw", "ivfflat", "exact"])
async def test_each_mode_uses_its_own_index(
    servers: Servers, corpus: SeedResult, mode: str
) -> None:
    """Both ANN indexes exist side by side; each mode's query must pick its own."""
    import asyncpg
    from pgvector.asyncpg import register_vector

    from service.db import index_spec, local_settings, search_sql

    settings = Settings(database_url=servers.database_url, embedder="hash", index_mode=mode)  # type: ignore[arg-type]  # validated literal
    conn = await asyncpg.connect(servers.database_url)
    try:
        await register_vector(conn)
        async with conn.transaction():
            for stmt in local_settings(settings, 10, with_topic=False):
                await conn.execute(stmt)
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN " + search_sql(settings, with_topic=False),
                    hash_embed(["telescopes"])[0],
                    10,
                )
            )
    finally:
        await conn.close()
    name = index_spec(settings).name
    if name is None:
        assert "Index Scan" not in plan, plan
    else:
        assert name in plan, plan
