"""The service's queries: schema and model checks, readiness, search (streams too), EXPLAIN, writes.

Every search statement and its settings come from :func:`service.db.contract.search_plan`,
and :meth:`Database.search` and :meth:`Database.explain` run a plan through the same
:meth:`Database._planned`, so an EXPLAIN shows what a search runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector

from service.db import schema
from service.db.contract import EXPLAIN, IndexConfig, SearchPlan, search_many_sql, search_plan
from service.db.pool import ConnectionPool
from service.errors import CorpusMismatch
from service.metrics import Metrics
from service.model import Row, Vectors
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Explained:
    """``EXPLAIN (ANALYZE, BUFFERS, SETTINGS)`` of one search, with what it ran under."""

    plan: SearchPlan
    k: int
    text: str  # the plan, one line per row of EXPLAIN's output
    # the plan's settings as read back from the connection right after the EXPLAIN
    # (pgvector's settings are not among those EXPLAIN's SETTINGS option lists)
    settings: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index_mode": self.plan.index_mode,
            "k": self.k,
            "settings": self.settings,
            "statement": self.plan.statement,
            "plan": self.text,
        }


def _row(r: asyncpg.Record, at: int = 0) -> Row:
    """One hit as a :data:`~service.model.Row`, straight from the record (the statements
    select id, title, topic, score in that order from column ``at``: service.db.contract)."""
    return (r[at], r[at + 1], float(r[at + 3]), r[at + 2])


def _rows(records: Sequence[asyncpg.Record]) -> list[Row]:
    return [_row(r) for r in records]


class Database:
    """The service's access to PostgreSQL. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, pool: ConnectionPool, settings: Settings, metrics: Metrics) -> None:
        self.pool = pool
        self._settings = settings
        self._metrics = metrics
        self._index = IndexConfig.from_settings(settings)
        self._model_id: str | None = None
        self._model_ok = True

    @classmethod
    async def open(cls, settings: Settings, metrics: Metrics) -> Database:
        return cls(await ConnectionPool.open(settings, metrics), settings, metrics)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  # bounded close, asyncpg style
        await self.pool.close(timeout)

    def connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        return self.pool.connection()

    # ------------------------------------------------------------------ schema

    async def ensure_schema(self, *, create_index: bool) -> None:
        async with self.connection() as conn, conn.transaction():
            await conn.execute(schema.LOCK_SQL, schema.SCHEMA_LOCK_KEY)
            await conn.execute(schema.SCHEMA_SQL)
            ddl = self._index.ddl()
            if create_index and ddl is not None:
                await conn.execute(ddl)

    async def check_model(self, model_id: str) -> None:
        """Refuse to serve a corpus embedded by another model; claim an empty one."""
        async with self.connection() as conn:
            stored = await conn.fetchval(schema.MODEL_ID_SQL)
            if stored is None:
                await conn.execute(schema.CLAIM_MODEL_SQL, model_id)
                stored = await conn.fetchval(schema.MODEL_ID_SQL)
        self._model_id = model_id
        self._model_ok = stored == model_id
        if not self._model_ok:
            raise CorpusMismatch(
                f"the corpus was embedded by {stored!r} but SEARCH_EMBEDDER gives "
                f"{model_id!r}: re-seed the corpus or switch the embedder"
            )

    async def require_model(self) -> None:
        """Cheap when the corpus matches; re-checks (after a re-seed) when it did not."""
        if not self._model_ok and self._model_id is not None:
            await self.check_model(self._model_id)

    async def readiness(self) -> tuple[bool, str]:
        name = self._index.name
        try:
            await self.require_model()
        except CorpusMismatch as exc:
            return False, str(exc)
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")
            if name is None:
                return True, "exact scan (no index needed)"
            present = await conn.fetchval(schema.INDEX_PRESENT_SQL, name)
        if not present:
            return False, f"index {name} missing"
        return True, f"index {name} present"

    # ------------------------------------------------------------------ search

    def plan(self, k: int, topic: str | None) -> SearchPlan:
        return search_plan(self._settings, k, with_topic=topic is not None)

    @staticmethod
    def _args(vector: Vectors, k: int, topic: str | None) -> list[Any]:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        return [vec, k] if topic is None else [vec, k, topic]

    async def _prepare(self, conn: asyncpg.Connection, plan: SearchPlan) -> None:
        for stmt in plan.set_local_statements():
            await conn.execute(stmt)
        if self._settings.debug_db_delay_ms > 0:
            await conn.execute("SELECT pg_sleep($1)", self._settings.debug_db_delay_ms / 1000)

    @contextlib.asynccontextmanager
    async def _planned(self, plan: SearchPlan) -> AsyncIterator[asyncpg.Connection]:
        """A connection set up to run ``plan``'s statement under ``plan``'s settings."""
        if not plan.in_transaction:
            # one statement, one round trip: the session defaults hold the ANN setting
            async with self.connection() as conn:
                yield conn
            return
        async with self.connection() as conn, conn.transaction(readonly=True):
            await self._prepare(conn, plan)
            yield conn

    async def search(self, vector: Vectors, k: int, topic: str | None = None) -> tuple[Row, ...]:
        """The top ``k`` hits, best first, as rows (:data:`service.model.Row`)."""
        await self.require_model()
        plan = self.plan(k, topic)
        mode = plan.index_mode
        async with self._planned(plan) as conn:
            start = time.perf_counter()
            rows = await conn.fetch(plan.statement, *self._args(vector, k, topic))
            self._metrics.db_search_seconds.labels(mode).observe(time.perf_counter() - start)
        self._metrics.db_searches.labels(mode).inc()
        hits = _rows(rows)
        if topic is not None and mode == "ivfflat":
            hits.sort(key=lambda h: -h[2])  # relaxed_order iterative scan
        return tuple(hits)

    def batchable(self, k: int, topic: str | None) -> bool:
        """Can this search go in :meth:`search_many`: unfiltered, and one statement under
        the connection's defaults (no ``SET LOCAL``, so no exact scan)?"""
        return topic is None and not self.plan(k, None).in_transaction

    async def search_many(self, queries: Sequence[tuple[Vectors, int]]) -> list[tuple[Row, ...]]:
        """The hits of each ``(vector, k)`` (each :meth:`batchable`), in one statement and
        one round trip (:func:`service.db.contract.search_many_sql`)."""
        await self.require_model()
        limit = max(k for _, k in queries)
        mode = self.plan(limit, None).index_mode
        vectors = [Vector(np.asarray(v, dtype=np.float32).reshape(-1)) for v, _ in queries]
        async with self.connection() as conn:
            start = time.perf_counter()
            records = await conn.fetch(search_many_sql(self._index, limit), vectors)
            self._metrics.db_search_seconds.labels(mode).observe(time.perf_counter() - start)
        self._metrics.db_searches.labels(mode).inc(len(queries))
        hits: list[list[Row]] = [[] for _ in queries]
        for r in records:
            hits[r[0] - 1].append(_row(r, 1))  # column 0: the query's number
        return [tuple(h[:k]) for h, (_, k) in zip(hits, queries, strict=True)]

    async def explain(self, vector: Vectors, k: int, topic: str | None = None) -> Explained:
        """EXPLAIN ANALYZE of exactly what :meth:`search` runs for these arguments."""
        await self.require_model()
        plan = self.plan(k, topic)
        async with self._planned(plan) as conn:
            rows = await conn.fetch(EXPLAIN + plan.statement, *self._args(vector, k, topic))
            settings = {
                name: str(await conn.fetchval("SELECT current_setting($1)", name))
                for name, _ in plan.settings
            }
        return Explained(plan, k, "\n".join(str(r[0]) for r in rows), settings)

    # ------------------------------------------------------------------ writes

    async def insert_documents(
        self, docs: Sequence[tuple[str, str, str]], vectors: Vectors
    ) -> list[int]:
        await self.require_model()
        titles = [d[0] for d in docs]
        bodies = [d[1] for d in docs]
        topics = [d[2] for d in docs]
        # Vector objects, not arrays: asyncpg would read a nested array as a dimension.
        embeddings = [Vector(np.asarray(v, dtype=np.float32)) for v in vectors]
        async with self.connection() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO documents (title, body, topic, embedding) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::vector[]) "
                "RETURNING id",
                titles,
                bodies,
                topics,
                embeddings,
            )
        self._metrics.documents_written.labels("insert").inc(len(rows))
        return [int(r["id"]) for r in rows]

    async def delete_document(self, doc_id: int) -> bool:
        async with self.connection() as conn:
            status = await conn.execute("DELETE FROM documents WHERE id = $1", doc_id)
        deleted = str(status).endswith(" 1")
        if deleted:
            self._metrics.documents_written.labels("delete").inc()
        return deleted
