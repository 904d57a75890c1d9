"""Large k on HNSW: raise ``hnsw.ef_search`` to k, or keep it and let pgvector 0.8 iterate?

pgvector's HNSW scan returns at most ``ef_search`` rows, so the service raises it to k for
k above its default (a candidate list of k is about the cost of a much wider search).
pgvector 0.8 can instead continue the scan where a pass ends (``hnsw.iterative_scan``)
until k rows are found or ``hnsw.max_scan_tuples`` were visited. For each k and variant
this measures, on a seeded corpus and with real query embeddings (the query log's texts):

- recall@k against the exact top k (index scans off), tie-aware on the distance;
- rows returned (an iterative scan may stop short of k at ``max_scan_tuples``);
- latency p50/p95 of the statement on one connection, variants interleaved per query in a
  shuffled order so that drift hits all alike.

``relaxed_order`` may return rows slightly out of distance order; recall ignores order,
and the service sorts such rows (it does so for IVFFlat with a filter already).

    python benchmarks/stream_ann.py --database-url URL --query-log querylog.json \\
        --k 100,200,500,1000 --queries 200 --json /tmp/ann.json

The database must hold a corpus embedded by ``--embedder`` (``perfci seed``), with the
service's HNSW index (its DDL: service.db.contract).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from service.db.contract import IndexConfig, search_sql, set_local
from service.embed.factory import make_embedder
from service.settings import Settings

DEFAULT_EF = 80  # the service's SEARCH_HNSW_EF_SEARCH default
RECALL_TIE_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    settings: tuple[tuple[str, str], ...]
    sort: bool = False  # relaxed order: sort the rows by distance afterwards


def variants(k: int, ef: int) -> list[Variant]:
    return [
        Variant(f"ef_search={max(ef, k)}", (("hnsw.ef_search", str(max(ef, k))),)),
        Variant(
            f"ef_search={ef}+strict_order",
            (("hnsw.ef_search", str(ef)), ("hnsw.iterative_scan", "strict_order")),
        ),
        Variant(
            f"ef_search={ef}+relaxed_order",
            (("hnsw.ef_search", str(ef)), ("hnsw.iterative_scan", "relaxed_order")),
            sort=True,
        ),
    ]


@dataclass(frozen=True, slots=True)
class Point:
    k: int
    variant: str
    recall: float
    rows_mean: float
    rows_min: int
    p50_ms: float
    p95_ms: float
    queries: int


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-len(ordered) * q // 1)) - 1))]


def _recall(got: Sequence[float], exact: Sequence[float]) -> float:
    """Share of the exact top k matched, tie-aware: a row as close as the k-th counts."""
    if not exact:
        return 1.0
    kth = exact[-1] + RECALL_TIE_EPS
    return min(len(exact), sum(1 for d in got if d <= kth)) / len(exact)


async def _timed(
    conn: asyncpg.Connection, sql: str, vec: np.ndarray[Any, Any], k: int, v: Variant
) -> tuple[float, list[float]]:
    async with conn.transaction(readonly=True):
        for name, value in v.settings:
            await conn.execute(set_local(name, value))
        start = time.perf_counter()
        rows = await conn.fetch(sql, vec, k)
        elapsed = time.perf_counter() - start
    scores = [1.0 - float(r["score"]) for r in rows]
    return elapsed, sorted(scores) if v.sort else scores


async def measure(
    database_url: str,
    texts: Sequence[str],
    ks: Sequence[int],
    *,
    embedder: str,
    ef: int,
    seed: int,
) -> list[Point]:
    model = make_embedder(embedder)
    vectors = await model.embed(list(texts))
    await model.aclose()
    index = IndexConfig.from_settings(Settings(index_mode="hnsw"))
    sql = search_sql(index, with_topic=False)
    rng = random.Random(seed)
    conn = await asyncpg.connect(database_url, server_settings={"jit": "off"})
    try:
        await register_vector(conn)
        points = []
        for k in ks:
            vs = variants(k, ef)
            times: dict[str, list[float]] = {v.name: [] for v in vs}
            recalls: dict[str, list[float]] = {v.name: [] for v in vs}
            rows: dict[str, list[int]] = {v.name: [] for v in vs}
            exact_ms: list[float] = []
            for vec in vectors:
                async with conn.transaction(readonly=True):
                    await conn.execute(set_local("enable_indexscan", "off"))
                    start = time.perf_counter()
                    exact_rows = await conn.fetch(sql, vec, k)
                    exact_ms.append((time.perf_counter() - start) * 1000)
                exact = [1.0 - float(r["score"]) for r in exact_rows]
                order = list(vs)
                rng.shuffle(order)
                for v in order:
                    elapsed, got = await _timed(conn, sql, vec, k, v)
                    times[v.name].append(elapsed * 1000)
                    recalls[v.name].append(_recall(got, exact))
                    rows[v.name].append(len(got))
            points.append(
                Point(
                    k,
                    "exact scan (index off)",
                    1.0,
                    float(k),
                    k,
                    round(_quantile(exact_ms, 0.5), 2),
                    round(_quantile(exact_ms, 0.95), 2),
                    len(vectors),
                )
            )
            for v in vs:
                points.append(
                    Point(
                        k=k,
                        variant=v.name,
                        recall=round(statistics.fmean(recalls[v.name]), 4),
                        rows_mean=round(statistics.fmean(rows[v.name]), 1),
                        rows_min=min(rows[v.name]),
                        p50_ms=round(_quantile(times[v.name], 0.5), 2),
                        p95_ms=round(_quantile(times[v.name], 0.95), 2),
                        queries=len(vectors),
                    )
                )
        return points
    finally:
        await conn.close()


def table(points: Sequence[Point]) -> str:
    head = (
        f"{'k':>5} {'variant':<30} {'recall@k':>8} {'rows':>7} {'min':>5} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    lines = [head, "-" * len(head)]
    for p in points:
        lines.append(
            f"{p.k:>5} {p.variant:<30} {p.recall:>8.4f} {p.rows_mean:>7.1f} {p.rows_min:>5} "
            f"{p.p50_ms:>7.2f} {p.p95_ms:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--query-log", type=Path, required=True)
    parser.add_argument("--k", default="100,200,500,1000", help="comma-separated k values")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hash"))
    parser.add_argument("--ef-search", type=int, default=DEFAULT_EF)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the points here")
    args = parser.parse_args(argv)
    ks = [int(x) for x in args.k.split(",") if x.strip()]
    log = json.loads(args.query_log.read_text())
    texts = sorted({str(q["q"]) for q in log["queries"]})
    texts = random.Random(args.seed).sample(texts, min(args.queries, len(texts)))
    points = asyncio.run(
        measure(
            args.database_url, texts, ks, embedder=args.embedder, ef=args.ef_search, seed=args.seed
        )
    )
    print(table(points))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
