"""``python -m service.db.sweep``: recall@10, latency and QPS per ANN index and knob value.

Reads one JSON request on stdin, writes a JSON list of points to stdout and progress
lines to stderr; bad input exits 2 with a one-line message, a failed sweep 1.
``perfci sweep index`` runs it as a process (the pipeline never imports the service)::

    {"database_url": "postgresql://...",
     "variants": [{"method": "hnsw", "vector_type": "vector", "m": 16,
                   "ef_construction": 64, "lists": 100}, ...],
     "knobs": {"hnsw": [10, 40, 80], "ivfflat": [1, 10]},
     "queries": 200, "concurrency": [1, 4, 8], "seed": 1, "drop_existing": false}

Works on the database alone: query vectors are documents' own embeddings with a little
noise, so they fall inside the corpus's clusters as real queries do, and no embedder is
needed. The truth is the service's exact mode; each variant's index DDL, its search
order and its knob come from :mod:`service.db.contract`. Each variant is built under a
``sweep_`` name (timed), checked to be the one the planner uses, measured, and dropped.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from service.db.contract import ANN_INDEXES_SQL, IndexConfig, distance_sql, knob_setting, set_local

K = 10
WARM_UP_QUERIES = 20
Floats = npt.NDArray[np.float32]
EXACT = IndexConfig("exact")
EXACT_SETTINGS = [set_local("enable_indexscan", "off"), set_local("enable_bitmapscan", "off")]


class SweepError(Exception):
    """A database that cannot be swept as asked; exit 1 with the message."""


class BadRequest(SweepError):
    """The request on stdin is invalid; exit 2 with a message naming the key."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One index to build and measure, named apart from the service's own indexes."""

    index: IndexConfig

    @property
    def name(self) -> str:
        i = self.index
        if i.mode == "hnsw":
            return f"sweep_hnsw_{i.vector_type}_m{i.m}_efc{i.ef_construction}"
        return f"sweep_ivfflat_{i.vector_type}_l{i.lists}"

    def ddl(self) -> str:
        ddl = self.index.ddl(self.name, if_not_exists=False)
        assert ddl is not None, "a sweep variant is an ANN index"
        return ddl

    def knob(self, value: int) -> str:
        return set_local(*knob_setting(self.index.mode, value))


@dataclass(frozen=True, slots=True)
class SweepPoint:
    variant: str
    method: str
    vector_type: str
    knob: str
    value: int
    recall_at_10: float
    p50_ms: float
    p99_ms: float
    qps: dict[int, float]  # concurrency -> queries per second
    build_s: float
    index_mb: float

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "qps": {str(c): v for c, v in self.qps.items()}}


@dataclass(frozen=True, slots=True)
class SweepRequest:
    database_url: str
    variants: tuple[Variant, ...]
    knobs: dict[str, tuple[int, ...]]
    queries: int = 200
    concurrency: tuple[int, ...] = (1, 4, 8)
    seed: int = 1
    drop_existing: bool = False


async def _sample_queries(conn: asyncpg.Connection, n: int, seed: int) -> Floats:
    rows = await conn.fetch(
        "SELECT embedding FROM documents ORDER BY md5(id::text || $1) LIMIT $2", str(seed), n
    )
    if len(rows) < n:
        raise SweepError(f"the corpus holds {len(rows)} documents; the sweep needs {n} queries")
    base = np.stack([np.asarray(r["embedding"].to_numpy(), dtype=np.float32) for r in rows])
    rng = np.random.default_rng(seed)
    noisy = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
    return np.asarray(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), dtype=np.float32)


async def _exact(conn: asyncpg.Connection, queries: Floats) -> list[float]:
    """The exact K-th nearest distance per query (ties make id sets ambiguous)."""
    truth = []
    sql = distance_sql(EXACT)
    for q in queries:
        async with conn.transaction():
            for stmt in EXACT_SETTINGS:
                await conn.execute(stmt)
            rows = await conn.fetch(sql, q, K)
        truth.append(float(rows[-1]["d"]))
    return truth


async def _check_plan(conn: asyncpg.Connection, variant: Variant, query: Floats) -> None:
    """Refuse to measure when the planner prefers another index on the same expression."""
    async with conn.transaction():
        await conn.execute(variant.knob(10))
        rows = await conn.fetch("EXPLAIN " + distance_sql(variant.index), query, K)
        plan = "\n".join(r[0] for r in rows)
    if variant.name not in plan:
        others = [
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
                "AND indexdef ILIKE $1 AND indexname <> $2",
                f"%USING {variant.index.mode}%",
                variant.name,
            )
        ]
        await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
        raise SweepError(
            f"the planner does not use {variant.name} (other {variant.index.mode} indexes: "
            f"{', '.join(others) or 'none'}); rerun with --drop-existing to drop them first"
        )


async def drop_ann_indexes(database_url: str) -> list[str]:
    """Drop every HNSW/IVFFlat index (the service recreates its own on start)."""
    conn = await asyncpg.connect(database_url)
    try:
        names = [r["indexname"] for r in await conn.fetch(ANN_INDEXES_SQL)]
        for name in names:
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        return names
    finally:
        await conn.close()


async def _run_queries(
    pool: asyncpg.Pool, variant: Variant, value: int, queries: Floats, concurrency: int
) -> tuple[list[list[float]], list[float], float]:
    sql, knob = distance_sql(variant.index), variant.knob(value)
    results: list[list[float]] = [[] for _ in queries]
    latencies: list[float] = []
    cursor = iter(range(len(queries)))

    async def worker() -> None:
        async with pool.acquire() as conn:
            for i in cursor:
                start = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(knob)
                    rows = await conn.fetch(sql, queries[i], K)
                latencies.append((time.perf_counter() - start) * 1000)
                results[i] = [float(r["d"]) for r in rows]

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, latencies, len(queries) / (time.perf_counter() - start)


def _recall(found: list[list[float]], truth: list[float]) -> float:
    # tie-aware, as ann-benchmarks counts: as close as the exact K-th
    return float(
        np.mean([sum(d <= kth + 1e-6 for d in f) / K for f, kth in zip(found, truth, strict=True)])
    )


async def sweep(
    request: SweepRequest, progress: Callable[[str], None] = lambda _m: None
) -> list[SweepPoint]:
    if request.drop_existing:
        dropped = await drop_ann_indexes(request.database_url)
        progress(f"dropped {', '.join(dropped) or 'no index'}; restart the service to rebuild")
    concurrency = request.concurrency
    conn = await asyncpg.connect(request.database_url)
    pool = await asyncpg.create_pool(
        request.database_url,
        min_size=max(concurrency),
        max_size=max(concurrency),
        init=register_vector,
    )
    try:
        await register_vector(conn)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        qs = await _sample_queries(conn, request.queries, request.seed)
        progress(f"exact top-{K} for {request.queries} queries")
        truth = await _exact(conn, qs)
        points: list[SweepPoint] = []
        for variant in request.variants:
            points += await _measure_variant(conn, pool, variant, request, qs, truth, progress)
        return points
    finally:
        await pool.close()
        await conn.close()


async def _measure_variant(
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    variant: Variant,
    request: SweepRequest,
    qs: Floats,
    truth: list[float],
    progress: Callable[[str], None],
) -> list[SweepPoint]:
    method = variant.index.mode
    await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
    progress(f"building {variant.name}")
    start = time.perf_counter()
    await conn.execute(variant.ddl())
    build_s = time.perf_counter() - start
    size = await conn.fetchval("SELECT pg_relation_size($1::regclass)", variant.name)
    await _check_plan(conn, variant, qs[0])
    points = []
    try:
        for value in request.knobs.get(method, ()):
            qps: dict[int, float] = {}
            found: list[list[float]] = []
            lat: list[float] = []
            for c in request.concurrency:
                await _run_queries(pool, variant, value, qs[:WARM_UP_QUERIES], c)  # warm-up
                res, latencies, rate = await _run_queries(pool, variant, value, qs, c)
                qps[c] = rate
                if c == request.concurrency[0]:
                    found, lat = res, latencies
            recall = _recall(found, truth)
            knob = "ef_search" if method == "hnsw" else "probes"
            points.append(
                SweepPoint(
                    variant=variant.name,
                    method=method,
                    vector_type=variant.index.vector_type,
                    knob=knob,
                    value=value,
                    recall_at_10=recall,
                    p50_ms=float(np.percentile(lat, 50)),
                    p99_ms=float(np.percentile(lat, 99)),
                    qps=qps,
                    build_s=build_s,
                    index_mb=int(size) / 2**20,
                )
            )
            progress(f"{variant.name} {knob}={value}: recall {recall:.3f}")
    finally:
        await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
    return points


# ---------------------------------------------------------------------- request parsing

_VARIANT_KEYS = {"method", "vector_type", "m", "ef_construction", "lists"}
_REQUEST_KEYS = {
    "database_url",
    "variants",
    "knobs",
    "queries",
    "concurrency",
    "seed",
    "drop_existing",
}


def _positive_ints(value: object, where: str, *, empty: bool = False) -> tuple[int, ...]:
    if not isinstance(value, list) or (not value and not empty):
        raise BadRequest(f"{where}: expected a non-empty list of positive integers")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise BadRequest(f"{where}={value!r}: expected positive integers")
    return tuple(value)


def _int(obj: dict[str, Any], key: str, default: int, where: str) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{where}{key}={value!r}: expected a positive integer")
    return value


def _seed(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"seed={value!r}: expected an integer >= 0")
    return value


def _variant(obj: object, n: int) -> Variant:
    where = f"variants[{n}]."
    if not isinstance(obj, dict):
        raise BadRequest(f"variants[{n}]: expected an object")
    unknown = sorted(set(obj) - _VARIANT_KEYS)
    if unknown:
        raise BadRequest(f"{where}{unknown[0]}: unknown key (expected {sorted(_VARIANT_KEYS)})")
    method, vector_type = obj.get("method"), obj.get("vector_type", "vector")
    if method not in ("hnsw", "ivfflat"):
        raise BadRequest(f"{where}method={method!r}: expected hnsw or ivfflat")
    if vector_type not in ("vector", "halfvec"):
        raise BadRequest(f"{where}vector_type={vector_type!r}: expected vector or halfvec")
    m = _int(obj, "m", 16, where)
    efc = _int(obj, "ef_construction", 64, where)
    lists = _int(obj, "lists", 100, where)
    return Variant(IndexConfig(method, vector_type, m, efc, lists))


def parse_request(raw: str) -> SweepRequest:
    """The stdin request, checked; a :class:`BadRequest` names the bad key or value."""
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the request is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadRequest("the request must be a JSON object")
    unknown = sorted(set(obj) - _REQUEST_KEYS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key (expected {sorted(_REQUEST_KEYS)})")
    url = obj.get("database_url")
    if not isinstance(url, str) or not url:
        raise BadRequest("database_url: expected a non-empty string")
    variants = obj.get("variants")
    if not isinstance(variants, list) or not variants:
        raise BadRequest("variants: expected a non-empty list")
    knobs_obj = obj.get("knobs")
    if not isinstance(knobs_obj, dict) or not set(knobs_obj) <= {"hnsw", "ivfflat"}:
        raise BadRequest('knobs: expected {"hnsw": [ints], "ivfflat": [ints]}')
    # an empty list: no point for that method (its variants are built and checked only)
    knobs = {k: _positive_ints(v, f"knobs.{k}", empty=True) for k, v in knobs_obj.items()}
    parsed = tuple(_variant(v, n) for n, v in enumerate(variants))
    for v in parsed:
        if v.index.mode not in knobs:
            raise BadRequest(f"knobs.{v.index.mode}: missing, but variant {v.name} needs it")
    drop = obj.get("drop_existing", False)
    if not isinstance(drop, bool):
        raise BadRequest(f"drop_existing={drop!r}: expected true or false")
    return SweepRequest(
        database_url=url,
        variants=parsed,
        knobs=knobs,
        queries=_int(obj, "queries", 200, ""),
        concurrency=_positive_ints(obj.get("concurrency", [1, 4, 8]), "concurrency"),
        seed=_seed(obj.get("seed", 1)),
        drop_existing=drop,
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(stdin: str | None = None) -> int:
    """Exit 0 with the points on stdout; 2 on a bad request; 1 when the sweep fails."""
    try:
        request = parse_request(sys.stdin.read() if stdin is None else stdin)
    except BadRequest as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        points = asyncio.run(sweep(request, _progress))
    except (SweepError, OSError, asyncpg.PostgresError) as exc:
        print(f"error: the sweep failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps([p.as_json() for p in points]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
