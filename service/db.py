"""PostgreSQL + pgvector: pool, schema, index modes and the search queries.

Decision table for the index a query may use (pgvector uses an index only for
``ORDER BY embedding <=> $1 LIMIT k``):

=========  ==========================================  ==============================
mode       per-query settings (SET LOCAL, in a txn)     index
=========  ==========================================  ==============================
hnsw       hnsw.ef_search = max(ef_search, k)           hnsw (m, ef_construction)
ivfflat    ivfflat.probes = probes                      ivfflat (lists)
exact      enable_indexscan = off                       none: the recall reference
=========  ==========================================  ==============================

With a topic filter, the ANN modes turn on pgvector's iterative index scans so that a
selective filter still returns k rows. ``halfvec`` storage indexes and searches the
expression ``embedding::halfvec(384)`` over the same table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector
from pgvector.asyncpg import register_vector

from service.embed import DIM, Vectors
from service.errors import CorpusMismatch, Unavailable
from service.metrics import Metrics
from service.settings import Settings

SCHEMA_LOCK_KEY = 7_338_214_001  # advisory lock serialising schema/index DDL across workers

SCHEMA_SQL = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS corpus_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id        bigserial PRIMARY KEY,
    title     text NOT NULL,
    body      text NOT NULL,
    topic     text NOT NULL,
    embedding vector({DIM}) NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_topic_idx ON documents (topic);
"""


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    title: str
    score: float
    topic: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": self.score, "topic": self.topic}


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What the configured mode needs: index name and DDL (None for exact)."""

    name: str | None
    ddl: str | None


def _expr(settings: Settings) -> tuple[str, str, str, str]:
    """Column expression, parameter cast, distance operator and operator class.

    Each ANN mode searches its own expression so that the planner can only pick that
    mode's index when both exist side by side: HNSW and exact use ``embedding``; IVFFlat
    uses ``l2_normalize(embedding)``, the same vectors for the unit-length embeddings every
    embedder here produces, hence the same cosine distances and rankings.
    """
    col = "l2_normalize(embedding)" if settings.index_mode == "ivfflat" else "embedding"
    if settings.vector_type == "halfvec":
        return (
            f"({col}::halfvec({DIM}))",
            f"$1::vector::halfvec({DIM})",
            "<=>",
            "halfvec_cosine_ops",
        )
    if settings.index_mode == "ivfflat":
        col = f"{col}::vector({DIM})"  # an index needs the dimensions a function drops
    return f"({col})", "$1::vector", "<=>", "vector_cosine_ops"


def index_spec(settings: Settings) -> IndexSpec:
    expr, _, _, ops = _expr(settings)
    vt = settings.vector_type
    if settings.index_mode == "hnsw":
        name = f"documents_hnsw_{vt}_m{settings.hnsw_m}_efc{settings.hnsw_ef_construction}"
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {name} ON documents USING hnsw ({expr} {ops}) "
            f"WITH (m = {settings.hnsw_m}, ef_construction = {settings.hnsw_ef_construction})"
        )
        return IndexSpec(name, ddl)
    if settings.index_mode == "ivfflat":
        name = f"documents_ivfflat_norm_{vt}_l{settings.ivfflat_lists}"
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {name} ON documents USING ivfflat ({expr} {ops}) "
            f"WITH (lists = {settings.ivfflat_lists})"
        )
        return IndexSpec(name, ddl)
    return IndexSpec(None, None)


def search_sql(settings: Settings, *, with_topic: bool) -> str:
    expr, param, op, _ = _expr(settings)
    where = "WHERE topic = $3 " if with_topic else ""
    score = f"1 - ({expr} {op} {param})"
    return (
        f"SELECT id, title, topic, {score} AS score FROM documents "
        f"{where}ORDER BY {expr} {op} {param} LIMIT $2"
    )


def local_settings(settings: Settings, k: int, *, with_topic: bool) -> list[str]:
    """SET LOCAL statements for one query; values are validated integers, never input."""
    if settings.index_mode == "hnsw":
        stmts = [f"SET LOCAL hnsw.ef_search = {max(settings.hnsw_ef_search, min(k, 1000))}"]
        if with_topic:
            stmts.append("SET LOCAL hnsw.iterative_scan = strict_order")
        return stmts
    if settings.index_mode == "ivfflat":
        stmts = [f"SET LOCAL ivfflat.probes = {settings.ivfflat_probes}"]
        if with_topic:
            stmts.append("SET LOCAL ivfflat.iterative_scan = relaxed_order")
        return stmts
    return ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"]


def session_defaults(settings: Settings) -> dict[str, str]:
    """The ANN setting a plain search needs, as a connection default (server_settings).

    A search whose SET LOCAL would only restate it then runs as one statement, without
    BEGIN/SET LOCAL/COMMIT (measured: docs/profiling.md). Exact mode keeps SET LOCAL:
    index scans off for a whole session would slow every lookup by id.
    """
    if settings.index_mode == "hnsw":
        return {"hnsw.ef_search": str(settings.hnsw_ef_search)}
    if settings.index_mode == "ivfflat":
        return {"ivfflat.probes": str(settings.ivfflat_probes)}
    return {}


def needs_local_settings(settings: Settings, k: int, *, with_topic: bool) -> bool:
    """False when the session defaults already are what ``local_settings`` would set."""
    if with_topic or settings.debug_db_delay_ms > 0:
        return True
    if settings.index_mode == "hnsw":
        return k > settings.hnsw_ef_search
    return settings.index_mode != "ivfflat"


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing beyond asyncpg's own rollback of an open transaction.

    The service changes session state only with SET LOCAL inside transactions, so the
    default ``RESET ALL``/``CLOSE ALL``/``UNLISTEN *`` round trip on every release would
    reset nothing (and ``RESET ALL`` keeps the server_settings, which are startup values).
    """
    del conn


async def _init_connection(conn: asyncpg.Connection) -> None:
    try:
        await register_vector(conn)
    except ValueError:
        # A fresh database: the extension comes before the codec that needs its type.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector(conn)


_DB_DOWN = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    # seen when PostgreSQL restarts under load: a connection the restart broke mid-protocol
    asyncpg.exceptions.InternalClientError,
)


class Database:
    """The service's access to PostgreSQL. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: Metrics) -> None:
        self._pool = pool
        self._settings = settings
        self._metrics = metrics
        self._sql = search_sql(settings, with_topic=False)
        self._sql_topic = search_sql(settings, with_topic=True)
        self._model_id: str | None = None
        self._model_ok = True

    @classmethod
    async def open(cls, settings: Settings, metrics: Metrics) -> Database:
        try:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                init=_init_connection,
                setup=None,
                reset=_keep_session,
                command_timeout=max(1.0, settings.statement_timeout_ms / 1000 + 1),
                server_settings={
                    "statement_timeout": str(settings.statement_timeout_ms),
                    "application_name": "search-service",
                    "jit": "off",
                    **session_defaults(settings),
                },
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        db = cls(pool, settings, metrics)
        metrics.pool_size.inc(pool.get_size())
        return db

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  # bounded close, asyncpg style
        self._metrics.pool_size.dec(self._pool.get_size())
        try:
            await asyncio.wait_for(self._pool.close(), timeout)
        except TimeoutError:
            self._pool.terminate()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; a saturated pool or a down server raises Unavailable (503)."""
        start = time.perf_counter()
        before = self._pool.get_size()
        try:
            conn = await self._pool.acquire(timeout=self._settings.pool_acquire_timeout_s)
        except TimeoutError as exc:
            self._metrics.pool_acquire_timeouts.inc()
            raise Unavailable("database pool exhausted", retry_after_s=1) from exc
        except _DB_DOWN as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        finally:
            self._metrics.pool_acquire_wait.observe(time.perf_counter() - start)
            grown = self._pool.get_size() - before
            if grown:
                self._metrics.pool_size.inc(grown)
        self._metrics.pool_in_use.inc()
        try:
            yield conn
        except asyncpg.exceptions.QueryCanceledError as exc:
            raise Unavailable("database query exceeded its time budget", 1) from exc
        except _DB_DOWN as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        finally:
            self._metrics.pool_in_use.dec()
            with contextlib.suppress(Exception):
                await self._pool.release(conn, timeout=5.0)

    # ------------------------------------------------------------------ schema

    async def ensure_schema(self, *, create_index: bool) -> None:
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
            await conn.execute(SCHEMA_SQL)
            if create_index:
                spec = index_spec(self._settings)
                if spec.ddl is not None:
                    await conn.execute(spec.ddl)

    async def check_model(self, model_id: str) -> None:
        """Refuse to serve a corpus embedded by another model; claim an empty one."""
        async with self.connection() as conn:
            stored = await conn.fetchval("SELECT value FROM corpus_meta WHERE key = 'model_id'")
            if stored is None:
                await conn.execute(
                    "INSERT INTO corpus_meta (key, value) VALUES ('model_id', $1) "
                    "ON CONFLICT (key) DO NOTHING",
                    model_id,
                )
                stored = await conn.fetchval("SELECT value FROM corpus_meta WHERE key = 'model_id'")
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
        spec = index_spec(self._settings)
        try:
            await self.require_model()
        except CorpusMismatch as exc:
            return False, str(exc)
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")
            if spec.name is None:
                return True, "exact scan (no index needed)"
            present = await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'documents' AND indexname = $1",
                spec.name,
            )
        if not present:
            return False, f"index {spec.name} missing"
        return True, f"index {spec.name} present"

    # ------------------------------------------------------------------ search

    def _args(self, vector: Vectors, k: int, topic: str | None) -> tuple[str, list[Any]]:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if topic is None:
            return self._sql, [vec, k]
        return self._sql_topic, [vec, k, topic]

    async def _prepare(self, conn: asyncpg.Connection, k: int, topic: str | None) -> None:
        for stmt in local_settings(self._settings, k, with_topic=topic is not None):
            await conn.execute(stmt)
        if self._settings.debug_db_delay_ms > 0:
            await conn.execute("SELECT pg_sleep($1)", self._settings.debug_db_delay_ms / 1000)

    async def search(self, vector: Vectors, k: int, topic: str | None = None) -> list[Hit]:
        await self.require_model()
        sql, args = self._args(vector, k, topic)
        mode = self._settings.index_mode
        if not needs_local_settings(self._settings, k, with_topic=topic is not None):
            # one statement, one round trip: the session defaults hold the ANN setting
            async with self.connection() as conn:
                start = time.perf_counter()
                rows = await conn.fetch(sql, *args)
                self._metrics.db_search_seconds.labels(mode).observe(time.perf_counter() - start)
        else:
            async with self.connection() as conn, conn.transaction(readonly=True):
                await self._prepare(conn, k, topic)
                start = time.perf_counter()
                rows = await conn.fetch(sql, *args)
                self._metrics.db_search_seconds.labels(mode).observe(time.perf_counter() - start)
        self._metrics.db_searches.labels(mode).inc()
        hits = [Hit(r["id"], r["title"], float(r["score"]), r["topic"]) for r in rows]
        if topic is not None and mode == "ivfflat":
            hits.sort(key=lambda h: -h.score)  # relaxed_order iterative scan
        return hits

    async def stream(
        self, vector: Vectors, k: int, topic: str | None, batch_size: int
    ) -> AsyncIterator[list[Hit]]:
        """Yield hits in batches as a server-side cursor reads them; never all k at once."""
        await self.require_model()
        sql, args = self._args(vector, k, topic)
        mode = self._settings.index_mode
        delay = self._settings.debug_db_delay_ms / 1000
        async with self.connection() as conn, conn.transaction(readonly=True):
            await self._prepare(conn, k, topic)
            self._metrics.db_searches.labels(mode).inc()
            cursor = await conn.cursor(sql, *args)
            while True:
                rows = await cursor.fetch(batch_size)
                if not rows:
                    break
                yield [Hit(r["id"], r["title"], float(r["score"]), r["topic"]) for r in rows]
                if len(rows) < batch_size:
                    break
                if delay > 0:
                    await conn.execute("SELECT pg_sleep($1)", delay)

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
