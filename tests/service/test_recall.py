"""Recall@10 of the ANN indexes against the exact scan, on the 20k corpus embedded by MiniLM."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ci.seed import SeedResult
from service.db import Database
from service.embed import MiniLMEmbedder, hash_embed
from service.metrics import Metrics
from service.settings import Settings
from tests.conftest import MiniLMCorpus, Servers

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(900)]

QUERIES = 200


async def _top10(settings: Settings, vectors: np.ndarray) -> list[list[float]]:
    """Scores (cosine similarity) of the top 10 per query."""
    db = await Database.open(settings, Metrics())
    try:
        return [[h.score for h in await db.search(v, 10)] for v in vectors]
    finally:
        await db.close()


def recall_at_10(ann: list[list[float]], exact: list[list[float]], eps: float = 1e-5) -> float:
    """Tie-aware recall, as ann-benchmarks counts it: a result is a true neighbour when it is
    at least as close as the exact 10th neighbour. Feature-hashed vectors tie often, and
    which of several equally close documents a scan returns is not an error."""
    return float(
        np.mean(
            [sum(s >= e[-1] - eps for s in a) / len(e) for a, e in zip(ann, exact, strict=True)]
        )
    )


@pytest.mark.parametrize(("mode", "floor"), [("hnsw", 0.95), ("ivfflat", 0.95)])
async def test_ann_recall_at_10(minilm_corpus: MiniLMCorpus, mode: str, floor: float) -> None:
    log = json.loads(minilm_corpus.seed.query_log_path.read_text())
    texts = [q["q"] for q in log["queries"][:QUERIES]]
    vectors = MiniLMEmbedder(threads=2).embed_sync(texts)
    base = Settings(database_url=minilm_corpus.database_url, embedder="minilm")
    exact = await _top10(dataclasses.replace(base, index_mode="exact"), vectors)
    ann = await _top10(dataclasses.replace(base, index_mode=mode), vectors)  # type: ignore[arg-type]  # parametrized literal
    recall = recall_at_10(ann, exact)
    assert recall >= floor, f"{mode} recall@10 {recall:.3f} < {floor}"


def test_recall_counts_ties_but_not_farther_results() -> None:
    exact = [[0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]
    assert recall_at_10([[0.9, 0.8] + [0.5] * 8], exact) == 1.0
    assert recall_at_10([[0.9, 0.8] + [0.5] * 7 + [0.4]], exact) == 0.9


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
