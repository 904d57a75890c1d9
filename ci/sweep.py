"""``perfci sweep index``: recall@10 against the exact scan, latency and QPS per ANN setting.

Works on the database alone (analysis, like EXPLAIN): query vectors are documents'
own embeddings with a little noise, so they fall inside the corpus's clusters as real
queries do, and no embedder is needed. Each index variant is built (and timed), measured,
and dropped unless it is the service's default, so that the planner never chooses
between two variants of one access method.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from ci.errors import RunError

DIM = 384
K = 10
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class IndexVariant:
    method: str  # hnsw | ivfflat
    vector_type: str  # vector | halfvec
    m: int = 16
    ef_construction: int = 64
    lists: int = 100

    @property
    def name(self) -> str:
        if self.method == "hnsw":
            return f"sweep_hnsw_{self.vector_type}_m{self.m}_efc{self.ef_construction}"
        return f"sweep_ivfflat_{self.vector_type}_l{self.lists}"

    @property
    def expr(self) -> str:
        # IVFFlat searches l2_normalize(embedding) (equal vectors for unit embeddings) so
        # that its index and an HNSW one on the same table are never confused by the planner.
        col = "l2_normalize(embedding)" if self.method == "ivfflat" else "embedding"
        if self.vector_type == "halfvec":
            return f"({col}::halfvec(384))"
        return f"({col}::vector(384))" if self.method == "ivfflat" else f"({col})"

    @property
    def param(self) -> str:
        return "$1::vector::halfvec(384)" if self.vector_type == "halfvec" else "$1::vector"

    @property
    def op(self) -> str:
        return "<=>"

    def ddl(self) -> str:
        if self.method == "hnsw":
            ops = f"{self.vector_type}_cosine_ops"
            with_ = f"m = {self.m}, ef_construction = {self.ef_construction}"
        else:
            ops = f"{self.vector_type}_cosine_ops"
            with_ = f"lists = {self.lists}"
        return (
            f"CREATE INDEX {self.name} ON documents USING {self.method} "
            f"({self.expr} {ops}) WITH ({with_})"
        )

    def query(self) -> str:
        return (
            "SELECT id, embedding <=> $1::vector AS d FROM documents "
            f"ORDER BY {self.expr} {self.op} {self.param} LIMIT {K}"
        )

    def knob(self, value: int) -> str:
        if self.method == "hnsw":
            return f"SET LOCAL hnsw.ef_search = {int(value)}"
        return f"SET LOCAL ivfflat.probes = {int(value)}"


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


async def _sample_queries(conn: asyncpg.Connection, n: int, seed: int) -> Floats:
    rows = await conn.fetch(
        "SELECT embedding FROM documents ORDER BY md5(id::text || $1) LIMIT $2", str(seed), n
    )
    if len(rows) < n:
        raise RunError(f"the corpus holds {len(rows)} documents; the sweep needs {n} queries")
    base = np.stack([np.asarray(r["embedding"].to_numpy(), dtype=np.float32) for r in rows])
    rng = np.random.default_rng(seed)
    noisy = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
    return np.asarray(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), dtype=np.float32)


async def _exact(conn: asyncpg.Connection, queries: Floats) -> list[float]:
    """The exact K-th nearest distance per query (ties make id sets ambiguous)."""
    truth = []
    for q in queries:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            rows = await conn.fetch(
                "SELECT embedding <=> $1::vector AS d FROM documents "
                f"ORDER BY embedding <=> $1::vector LIMIT {K}",
                q,
            )
        truth.append(float(rows[-1]["d"]))
    return truth


async def _check_plan(conn: asyncpg.Connection, variant: IndexVariant, query: Floats) -> None:
    """Refuse to measure when the planner prefers another index on the same expression."""
    async with conn.transaction():
        await conn.execute(variant.knob(10))
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + variant.query(), query))
    if variant.name not in plan:
        others = [
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
                "AND indexdef ILIKE $1 AND indexname <> $2",
                f"%USING {variant.method}%",
                variant.name,
            )
        ]
        await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
        raise RunError(
            f"the planner does not use {variant.name} (other {variant.method} indexes: "
            f"{', '.join(others) or 'none'}); rerun with --drop-existing to drop them first"
        )


async def drop_ann_indexes(database_url: str) -> list[str]:
    """Drop the service's HNSW/IVFFlat indexes (the service recreates its own on start)."""
    conn = await asyncpg.connect(database_url)
    try:
        names = [
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
                "AND (indexdef ILIKE '%USING hnsw%' OR indexdef ILIKE '%USING ivfflat%')"
            )
        ]
        for name in names:
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        return names
    finally:
        await conn.close()


async def _run_queries(
    pool: asyncpg.Pool, variant: IndexVariant, value: int, queries: Floats, concurrency: int
) -> tuple[list[list[float]], list[float], float]:
    sql, knob = variant.query(), variant.knob(value)
    results: list[list[float]] = [[] for _ in queries]
    latencies: list[float] = []
    cursor = iter(range(len(queries)))

    async def worker() -> None:
        async with pool.acquire() as conn:
            for i in cursor:
                start = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(knob)
                    rows = await conn.fetch(sql, queries[i])
                latencies.append((time.perf_counter() - start) * 1000)
                results[i] = [float(r["d"]) for r in rows]

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, latencies, len(queries) / (time.perf_counter() - start)


async def sweep_index(
    database_url: str,
    variants: Sequence[IndexVariant],
    knob_values: dict[str, Sequence[int]],
    *,
    queries: int = 200,
    concurrency: Sequence[int] = (1, 4, 8),
    seed: int = 1,
    keep: Callable[[IndexVariant], bool] = lambda _v: False,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[SweepPoint]:
    conn = await asyncpg.connect(database_url)
    pool = await asyncpg.create_pool(
        database_url, min_size=max(concurrency), max_size=max(concurrency), init=register_vector
    )
    try:
        await register_vector(conn)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        qs = await _sample_queries(conn, queries, seed)
        progress(f"exact top-{K} for {queries} queries")
        truth = await _exact(conn, qs)
        points: list[SweepPoint] = []
        for variant in variants:
            await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
            progress(f"building {variant.name}")
            start = time.perf_counter()
            await conn.execute(variant.ddl())
            build_s = time.perf_counter() - start
            size = await conn.fetchval("SELECT pg_relation_size($1::regclass)", variant.name)
            await _check_plan(conn, variant, qs[0])
            try:
                for value in knob_values[variant.method]:
                    qps: dict[int, float] = {}
                    found: list[list[float]] = []
                    lat: list[float] = []
                    for c in concurrency:
                        await _run_queries(pool, variant, value, qs[:20], c)  # warm-up
                        res, latencies, rate = await _run_queries(pool, variant, value, qs, c)
                        qps[c] = rate
                        if c == concurrency[0]:
                            found, lat = res, latencies
                    # tie-aware, as ann-benchmarks counts: as close as the exact K-th
                    recall = float(
                        np.mean(
                            [
                                sum(d <= kth + 1e-6 for d in f) / K
                                for f, kth in zip(found, truth, strict=True)
                            ]
                        )
                    )
                    knob = "ef_search" if variant.method == "hnsw" else "probes"
                    points.append(
                        SweepPoint(
                            variant=variant.name,
                            method=variant.method,
                            vector_type=variant.vector_type,
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
                if not keep(variant):
                    await conn.execute(f"DROP INDEX IF EXISTS {variant.name}")
        return points
    finally:
        await pool.close()
        await conn.close()


def format_table(points: Sequence[SweepPoint], concurrency: Sequence[int]) -> str:
    head = (
        f"{'index':34} {'knob':>14} {'recall@10':>9} {'p50 ms':>7} {'p99 ms':>7} "
        + " ".join(f"{'QPS@' + str(c):>8}" for c in concurrency)
        + f" {'build s':>8} {'size MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for p in points:
        lines.append(
            f"{p.variant:34} {p.knob + '=' + str(p.value):>14} {p.recall_at_10:9.3f} "
            f"{p.p50_ms:7.2f} {p.p99_ms:7.2f} "
            + " ".join(f"{p.qps[c]:8.0f}" for c in concurrency)
            + f" {p.build_s:8.1f} {p.index_mb:8.1f}"
        )
    return "\n".join(lines)


def plot_png(points: Sequence[SweepPoint], concurrency: int) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in dict.fromkeys(p.variant for p in points):
        pts = [p for p in points if p.variant == variant]
        ax.plot(
            [p.recall_at_10 for p in pts], [p.qps[concurrency] for p in pts], "o-", label=variant
        )
        for p in pts:
            ax.annotate(str(p.value), (p.recall_at_10, p.qps[concurrency]), fontsize=7)
    ax.set_xlabel("recall@10 (vs exact)")
    ax.set_ylabel(f"queries per second (concurrency {concurrency})")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def points_as_json(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    return [
        {
            **{k: getattr(p, k) for k in p.__dataclass_fields__ if k != "qps"},
            "qps": {str(c): v for c, v in p.qps.items()},
        }
        for p in points
    ]
