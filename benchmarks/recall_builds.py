"""How far apart recall@10 lies between two HNSW builds of the same rows and settings.

pgvector draws each node's level at random while it builds an HNSW graph, so two builds
of identical data and parameters answer some queries differently. The gate's recall check
(ci/judge/quality.py) must not read that as a pull request's effect. This builds the
service's HNSW index (its m, ef_construction and ef_search) ``--builds`` times on a seeded
database and scores each build against the exact top-10 of ``--queries`` query vectors
(corpus vectors with Gaussian noise, seeded). It drops the service's HNSW indexes: run it
on a stack of its own.

    perfci stack up --run-dir /tmp/rv --pg-port 55432 --redis-port 56380 --port 58001
    perfci seed --run-dir /tmp/rv --pg-port 55432 --redis-port 56380 --port 58001 --docs 20000
    python -m benchmarks.recall_builds --dsn postgresql://postgres@127.0.0.1:55432/postgres
    perfci stack down --run-dir /tmp/rv

It prints each build's recall, and for 120, 240, 600 ... queries the SD of the mean recall
difference over every pair of builds, beside the SE a paired test by query assumes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import time
from collections.abc import Sequence

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector.asyncpg import register_vector

from service.db.contract import IndexConfig
from service.settings import Settings

K = 10
INDEX = "recall_builds_idx"
NOISE = 0.6  # the query's distance from its corpus vector, as a share of the vector's norm


def pair_spread(recalls: npt.ArrayLike, n: int) -> tuple[float, float]:
    """SD of the mean difference over all pairs of builds, and the mean paired-test SE.

    ``recalls``: builds x queries; the first ``n`` queries are used.
    """
    per_query = np.asarray(recalls, dtype=np.float64)
    builds = per_query.shape[0]
    if builds < 2 or not 2 <= n <= per_query.shape[1]:
        raise ValueError(f"need 2+ builds and 2 <= n <= {per_query.shape[1]}, got {builds}, {n}")
    means, ses = [], []
    for a, b in itertools.combinations(range(builds), 2):
        d = per_query[b, :n] - per_query[a, :n]
        means.append(float(d.mean()))
        ses.append(float(d.std(ddof=1)) / math.sqrt(n))
    return float(np.std(means, ddof=1)) if len(means) > 1 else 0.0, float(np.mean(ses))


async def _measure(dsn: str, queries: int, builds: int, seed: int) -> npt.NDArray[np.float64]:
    settings = Settings()
    index = IndexConfig("hnsw", "vector", settings.hnsw_m, settings.hnsw_ef_construction, 100)
    conn = await asyncpg.connect(dsn)
    try:
        await register_vector(conn)
        # only the builds measured here may answer: the service's own HNSW indexes go
        for (name,) in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
            "AND indexdef ILIKE '%USING hnsw%'"
        ):
            await conn.execute(f'DROP INDEX "{name}"')
        rows = await conn.fetch("SELECT embedding FROM documents ORDER BY id")
        if len(rows) < queries:
            raise SystemExit(f"error: {len(rows)} documents, fewer than --queries {queries}")
        rng = np.random.default_rng(seed)
        qs = []
        for i in rng.choice(len(rows), queries, replace=False):
            v = np.asarray(rows[int(i)]["embedding"].to_numpy(), dtype=np.float32)
            v = v + rng.normal(0, NOISE / math.sqrt(v.size), v.size).astype(np.float32)
            qs.append(v / np.linalg.norm(v))
        sql = f"SELECT id FROM documents ORDER BY {index.expr} <=> $1 LIMIT {K}"
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            truth = [{r["id"] for r in await conn.fetch(sql, q)} for q in qs]
        per = np.zeros((builds, queries))
        for b in range(builds):
            await conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
            await conn.execute("SET maintenance_work_mem = '1GB'")
            start = time.monotonic()
            await conn.execute(index.ddl(INDEX) or "")
            took = time.monotonic() - start
            await conn.execute(f"SET hnsw.ef_search = {max(settings.hnsw_ef_search, K)}")
            for j, q in enumerate(qs):
                found = {r["id"] for r in await conn.fetch(sql, q)}
                per[b, j] = len(truth[j] & found) / K
            print(f"build {b + 1}: {took:.1f} s, recall@{K} {per[b].mean():.4f}", flush=True)
        await conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        return per
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="a seeded database (perfci seed)")
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--builds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.builds < 2 or args.queries < 2:
        parser.error(f"--builds {args.builds} and --queries {args.queries}: need 2 or more each")
    per = asyncio.run(_measure(args.dsn, args.queries, args.builds, args.seed))
    for n in sorted({n for n in (120, 240, 600, args.queries) if n <= args.queries}):
        sd, se = pair_spread(per, n)
        print(
            f"{n} queries: mean recall difference between builds SD {sd * 100:.2f} pp "
            f"(paired-test SE {se * 100:.2f} pp)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
