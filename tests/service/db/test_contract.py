"""Recall@10 of the ANN indexes against the exact scan, on the 20k corpus embedded by MiniLM."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ci.seed import SeedResult, generate_corpus
from service.db.database import Database
from service.embed.hash import hash_embed
from service.metrics import Metrics
from service.model import Vectors
from service.settings import Settings
from tests.harness import IVFFLAT_LISTS, Servers

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(900)]

QUERIES = 200


async def _top10(settings: Settings, vectors: Vectors) -> list[list[float]]:
    """Scores (cosine similarity) of the top 10 per query."""
    db = await Database.open(settings, Metrics())
    try:
        return [
            [row[2] for row in await db.search(v, 10)] for v in vectors
        ]  # (id, title, score, topic)
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


# (mode, settings for that mode, floor): HNSW at the service defaults (m 16,
# ef_construction 64, ef_search 40); IVFFlat sized for 20k rows (lists 20) at probes 10.
@pytest.mark.parametrize(
    ("mode", "knobs", "floor"),
    [("hnsw", {}, 0.95), ("ivfflat", {"ivfflat_lists": IVFFLAT_LISTS, "ivfflat_probes": 10}, 0.95)],
)
async def test_ann_recall_at_10(
    servers: Servers, corpus: SeedResult, mode: str, knobs: dict[str, int], floor: float
) -> None:
    # Queries from the corpus's own distribution (held-out documents of another seed), as
    # ann-benchmarks does: short query-log strings land between the hash clusters.
    held_out = generate_corpus(QUERIES, seed=corpus.seed + 1000)
    vectors = hash_embed([f"{d['title']}. {d['body']}" for d in held_out])
    base = Settings(database_url=servers.database_url, embedder="hash")
    exact = await _top10(dataclasses.replace(base, index_mode="exact"), vectors)
    ann = await _top10(dataclasses.replace(base, index_mode=mode, **knobs), vectors)  # type: ignore[arg-type]  # parametrized literal
    recall = recall_at_10(ann, exact)
    print(f"{mode} recall@10 = {recall:.3f} over {QUERIES} held-out queries")
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

    from service.db.contract import IndexConfig, search_plan

    settings = Settings(
        database_url=servers.database_url,
        embedder="hash",
        index_mode=mode,  # type: ignore[arg-type]  # parametrized literal
        ivfflat_lists=IVFFLAT_LISTS,
    )
    conn = await asyncpg.connect(servers.database_url)
    try:
        await register_vector(conn)
        search = search_plan(settings, 10, with_topic=False)
        async with conn.transaction():
            for stmt in search.set_local_statements():
                await conn.execute(stmt)
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN " + search.statement,
                    hash_embed(["telescopes"])[0],
                    10,
                )
            )
    finally:
        await conn.close()
    name = IndexConfig.from_settings(settings).name
    if name is None:
        assert "Index Scan" not in plan, plan
    else:
        assert name in plan, plan
