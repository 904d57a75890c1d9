"""Searches batched per loop turn, on the real PostgreSQL: the same hits as one by one,
one statement for a turn's searches, the HNSW index in its plan, errors shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from pgvector import Vector

from service.db.batch import SearchBatcher
from service.db.contract import EXPLAIN, IndexConfig, search_many_sql
from service.db.database import Database
from service.embed.hash import hash_embed
from service.metrics import Metrics
from service.model import Vectors
from service.settings import Settings
from tests.service.conftest import CacheStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(60)]

QUERIES = ("deep sea volcanoes", "telescope mirrors", "baking sourdough", "river deltas")


@pytest.fixture
async def db(cache_stack: CacheStack) -> AsyncIterator[Database]:
    settings = Settings.from_env(
        {
            "DATABASE_URL": cache_stack.database_url,
            "SEARCH_EMBEDDER": "hash",
            "SEARCH_POOL_MIN_SIZE": "1",
        }
    )
    database = await Database.open(settings, Metrics())
    await database.ensure_schema(create_index=True)
    yield database
    await database.close()


def _vector(text: str) -> Vectors:
    return np.asarray(hash_embed([text])[0], dtype=np.float32)


def _statements(db: Database) -> float:
    """Search statements run so far (the duration histogram's count)."""
    name = "search_db_search_duration_seconds_count"
    return sum(v for k, v in db._metrics.snapshot().items() if k.startswith(name))


async def test_search_many_returns_each_querys_hits_as_its_own_search(db: Database) -> None:
    queries = [(_vector(q), k) for q, k in zip(QUERIES, (10, 3, 25, 1), strict=True)]
    together = await db.search_many(queries)
    for (vector, k), rows in zip(queries, together, strict=True):
        alone = await db.search(vector, k)
        assert len(rows) == k
        assert [r[0] for r in rows] == [r[0] for r in alone]
        assert [r[2] for r in rows] == pytest.approx([r[2] for r in alone], abs=1e-6)
        assert [r[1] for r in rows] == [r[1] for r in alone]
        assert [r[3] for r in rows] == [r[3] for r in alone]


async def test_the_batched_statement_can_scan_the_hnsw_index_once_per_query(
    db: Database,
) -> None:
    # 2,000 documents are few enough that the planner sorts a sequential scan for the
    # single search too; with that path closed, both must read the index, the batch once
    # per query (its LIMIT is a literal; one taken from the query list would not do).
    index = IndexConfig.from_settings(db._settings)
    assert index.name is not None
    vectors = [Vector(np.asarray(_vector(q), dtype=np.float32)) for q in QUERIES]
    async with db.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(EXPLAIN + search_many_sql(index, 10), vectors)
    plan = "\n".join(str(r[0]) for r in rows)
    assert f"Index Scan using {index.name}" in plan, plan
    assert f"loops={len(QUERIES)})" in plan, plan
    assert "Seq Scan on documents" not in plan, plan


async def test_searches_of_one_turn_go_as_one_statement_and_a_lone_one_as_its_own(
    db: Database,
) -> None:
    batcher = SearchBatcher(db)
    before = _statements(db)
    results = await asyncio.gather(*[batcher.search(_vector(q), 5) for q in QUERIES])
    assert _statements(db) - before == 1
    for query, rows in zip(QUERIES, results, strict=True):
        assert [r[0] for r in rows] == [r[0] for r in await db.search(_vector(query), 5)]
    before = _statements(db)
    await batcher.search(_vector("alone"), 5)
    filtered = await asyncio.gather(
        *[batcher.search(_vector(q), 5, "science/astronomy") for q in QUERIES[:2]]
    )
    assert _statements(db) - before == 3  # the lone one, and each filtered one alone
    assert all(r[3] == "science/astronomy" for rows in filtered for r in rows)


async def test_a_full_batch_starts_another(db: Database) -> None:
    batcher = SearchBatcher(db, max_size=3)
    before = _statements(db)
    texts = [f"{q} {i}" for i in range(2) for q in QUERIES]  # 8 searches
    results = await asyncio.gather(*[batcher.search(_vector(t), 4) for t in texts])
    assert _statements(db) - before == 3  # 3 + 3 + 2
    assert all(len(rows) == 4 for rows in results)


async def test_an_error_of_the_statement_reaches_every_caller(db: Database) -> None:
    batcher = SearchBatcher(db)
    wrong = np.ones(7, dtype=np.float32)  # not the corpus's dimensions
    results = await asyncio.gather(
        batcher.search(_vector(QUERIES[0]), 5),
        batcher.search(wrong, 5),
        batcher.search(_vector(QUERIES[1]), 5),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    assert len(await batcher.search(_vector(QUERIES[2]), 5)) == 5  # the batcher goes on
