"""The cache's measurements, over HTTP only: a Zipf query-log replay per configuration.

For each configuration this starts a fresh stack (own run dir under /tmp, free ports),
seeds the corpus, warms up (not counted), optionally sends a burst of identical cold
queries, replays the query log sampled by weight with a fixed seed from ``--clients``
concurrent clients, reads ``/v1/stats`` before and after each phase and reports deltas,
then stops the stack by PID whatever happened.

=================  ========================================  ==========================
mode               configurations                             question
=================  ========================================  ==========================
(default)          cache on / ``SEARCH_CACHE_ENABLED=0``      hit ratio, DB searches saved
``--lock``         ``SEARCH_REDIS_LOCK_ENABLED=1`` / 0        does the cross-worker lock
                   (use with ``--workers 2``), with a burst    save DB searches over
                                                               per-process coalescing?
``--validate``     ``SEARCH_CACHE_VALIDATE=1`` / 0 / cache    what does delta validation
                   off (use with ``--write-fraction``)         keep of the hit ratio
                                                               under writes?
=================  ========================================  ==========================

``--write-fraction F`` (default 0): after that fraction of the replay's searches (picked
by the seed, the same ones in every configuration) the client ingests a document on the
query's text and topic and deletes it again, as the k6 scenarios' ``maybeWrite`` does.

    python benchmarks/cache_replay.py --json /tmp/replay.json
    python benchmarks/cache_replay.py --lock --workers 2 --json /tmp/lock.json
    python benchmarks/cache_replay.py --validate --write-fraction 0.02 --json /tmp/v.json

The hit ratio is (l1 + redis answers) / all answers, from deltas of the per-source
counters (``cache.sources``): ``cache.hit_ratio`` in ``/v1/stats`` is cumulative.
A request that joined another's computation (coalesced) counts as computed, not a hit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ci import stack
from ci.seed import seed_corpus
from ci.settings import StackSettings

RESULT_VERSION = 1
SOURCES = ("l1", "redis", "computed", "bypass")


@dataclass(frozen=True, slots=True)
class BenchSettings:
    docs: int = 20_000
    requests: int = 20_000
    warmup: int = 1_000
    clients: int = 100
    workers: int = 1
    embedder: str = "hash"
    seed: int = 42
    lock: bool = False
    matrix: bool = False
    validate: bool = False
    write_fraction: float = 0.0
    burst_queries: int = 50
    burst_copies: int = 40

    def __post_init__(self) -> None:
        for name in ("docs", "requests", "clients", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: expected >= 1")
        if self.warmup < 0:
            raise ValueError(f"warmup={self.warmup} is invalid: expected >= 0")
        if not 0 <= self.write_fraction <= 1:
            raise ValueError(
                f"write_fraction={self.write_fraction} is invalid: expected between 0 and 1"
            )
        if self.embedder not in ("hash", "minilm"):
            raise ValueError(f"embedder={self.embedder!r} is invalid: expected hash or minilm")


@dataclass(frozen=True, slots=True)
class Query:
    q: str
    k: int
    topic: str | None


@dataclass(frozen=True, slots=True)
class Phase:
    """Figures of one counted phase (replay or burst), from the client and /v1/stats deltas."""

    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    db_searches: int
    hits: int
    answered: int
    coalesced: int
    lock_acquired: int
    lock_waited: int
    writes: int = 0  # ingest + delete pairs sent
    kept: int = 0  # older entries the write log showed unchanged (served)
    dropped: int = 0  # older entries a logged write changed (recomputed)

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class ConfigResult:
    name: str
    env: dict[str, str]
    replay: Phase
    burst: Phase | None


def configurations(s: BenchSettings) -> list[tuple[str, dict[str, str]]]:
    """The feature on first, its baseline second: the reduction is 1 - first/second."""
    base = {"SEARCH_EMBEDDER": s.embedder}
    if s.lock:
        return [
            ("lock on", {**base, "SEARCH_REDIS_LOCK_ENABLED": "1"}),
            ("lock off", {**base, "SEARCH_REDIS_LOCK_ENABLED": "0"}),
        ]
    if s.validate:
        return [
            ("validate on", {**base, "SEARCH_CACHE_VALIDATE": "1"}),
            ("validate off", {**base, "SEARCH_CACHE_VALIDATE": "0"}),
            ("cache off", {**base, "SEARCH_CACHE_ENABLED": "0"}),
        ]
    if s.matrix:  # every optimisation on, then each one switched off alone
        return [
            ("all on", base),
            ("result cache off", {**base, "SEARCH_CACHE_ENABLED": "0"}),
            ("L1 off", {**base, "SEARCH_L1_ENABLED": "0"}),
            ("coalescing off", {**base, "SEARCH_COALESCE_ENABLED": "0"}),
            ("batching off", {**base, "SEARCH_BATCH_ENABLED": "0"}),
            ("embedding cache off", {**base, "SEARCH_EMBED_CACHE_ENABLED": "0"}),
            ("ANN off (exact scan)", {**base, "SEARCH_INDEX_MODE": "exact"}),
        ]
    return [
        ("cache on", {**base, "SEARCH_CACHE_ENABLED": "1"}),
        ("cache off", {**base, "SEARCH_CACHE_ENABLED": "0"}),
    ]


# ---------------------------------------------------------------------------- load


def load_query_log(path: Path) -> tuple[list[Query], list[float]]:
    data = json.loads(path.read_text())
    queries = [Query(str(e["q"]), int(e["k"]), e.get("topic")) for e in data["queries"]]
    weights = [float(e["weight"]) for e in data["queries"]]
    if not queries:
        raise ValueError(f"query log {path} holds no queries")
    return queries, weights


def _params(query: Query) -> dict[str, str]:
    params = {"q": query.q, "k": str(query.k)}
    if query.topic is not None:
        params["topic"] = query.topic
    return params


async def _write(client: httpx.AsyncClient, query: Query) -> bool:
    """Ingest a document on the query's text and topic, then delete it (k6's maybeWrite)."""
    doc = {
        "title": f"load test note on {query.q}",
        "body": f"{query.q} written by the load test and deleted right after",
        "topic": query.topic or "misc/load",
    }
    try:
        resp = await client.post("/v1/documents", json={"documents": [doc]})
        if resp.status_code != 201:
            return False
        for doc_id in resp.json()["ids"]:
            if (await client.delete(f"/v1/documents/{doc_id}")).status_code != 204:
                return False
    except httpx.HTTPError:
        return False
    return True


async def _drive(
    client: httpx.AsyncClient,
    queries: list[Query],
    clients: int,
    writes: frozenset[int] = frozenset(),
) -> tuple[list[float], int, float]:
    """Send ``queries`` in order from ``clients`` tasks, a write after those whose index is
    in ``writes``; search latencies (s), errors (searches and writes), wall time."""
    latencies: list[float] = []
    errors = 0
    it = iter(enumerate(queries))

    async def worker() -> None:
        nonlocal errors
        for i, query in it:  # shared iterator: each query is sent once
            t0 = time.perf_counter()
            try:
                resp = await client.get("/v1/search", params=_params(query))
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok
            if i in writes:
                errors += not await _write(client, query)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - start


async def _stats(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.get("/v1/stats")
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def _phase(
    before: dict[str, Any],
    after: dict[str, Any],
    lat: list[float],
    errors: int,
    wall: float,
    writes: int = 0,
) -> Phase:
    def delta(*path: str) -> int:
        a: Any = after
        b: Any = before
        for p in path:
            a, b = a[p], b[p]
        return round(float(a) - float(b))

    sources = {s: delta("cache", "sources", s) for s in SOURCES}
    ms = np.percentile(np.asarray(lat) * 1000, [50, 95, 99]) if lat else np.zeros(3)
    return Phase(
        requests=len(lat),
        errors=errors,
        seconds=round(wall, 2),
        throughput=round(len(lat) / wall, 1) if wall else 0.0,
        p50_ms=round(float(ms[0]), 2),
        p95_ms=round(float(ms[1]), 2),
        p99_ms=round(float(ms[2]), 2),
        db_searches=delta("db_searches"),
        hits=sources["l1"] + sources["redis"],
        answered=sum(sources.values()),
        coalesced=delta("cache", "coalesced"),
        lock_acquired=delta("cache", "lock", "acquired"),
        lock_waited=delta("cache", "lock", "waited"),
        writes=writes,
        kept=delta("cache", "validations", "kept"),
        dropped=delta("cache", "validations", "dropped"),
    )


async def measure(
    url: str, query_log: Path, s: BenchSettings, run_id: str
) -> tuple[Phase, Phase | None]:
    queries, weights = load_query_log(query_log)
    rng = random.Random(s.seed)  # same sample in every configuration
    warm = rng.choices(queries, weights, k=s.warmup)
    replay = rng.choices(queries, weights, k=s.requests)
    writes = frozenset(i for i in range(s.requests) if rng.random() < s.write_fraction)
    limits = httpx.Limits(max_connections=s.clients, max_keepalive_connections=s.clients)
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        await _drive(client, warm, s.clients)  # opens the pool's connections; not counted
        burst = None
        if s.lock:
            before = await _stats(client)
            lat: list[float] = []
            errors = 0
            wall = 0.0
            for i in range(s.burst_queries):
                # cold: text seen by neither configuration's stack before
                q = Query(f"burst {run_id} {i} harbour telescope sourdough", 10, None)
                part, err, took = await _drive(client, [q] * s.burst_copies, s.burst_copies)
                lat += part
                errors += err
                wall += took
            burst = _phase(before, await _stats(client), lat, errors, wall)
        before = await _stats(client)
        lat, errors, wall = await _drive(client, replay, s.clients, writes)
        after = await _stats(client)
        return _phase(before, after, lat, errors, wall, len(writes)), burst


# ---------------------------------------------------------------------------- stack


def _wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, reason = stack.service_readiness(url)
        if ready:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the service at {url} was not ready after seeding: {reason}")


def run_config(name: str, env: dict[str, str], s: BenchSettings) -> ConfigResult:
    run_dir = Path(tempfile.mkdtemp(prefix="cache-replay-"))
    ports = {stack.free_port() for _ in range(8)}
    pg, rd, svc = sorted(ports)[:3]  # distinct by construction of the set
    settings = StackSettings(
        run_dir=run_dir,
        pg_port=pg,
        redis_port=rd,
        service_port=svc,
        workers=s.workers,
        service_env=env,
    )
    settings.validate()
    _say(f"[{name}] stack in {run_dir} (ports {pg}/{rd}/{svc}, {s.workers} worker(s))")
    try:
        state = stack.up(settings, lambda m: _say(f"[{name}] {m}"))
        seeded = seed_corpus(
            run_dir,
            state.database_url,
            s.docs,
            s.seed,
            env,
            progress=lambda m: _say(f"[{name}] {m}"),
        )
        _wait_ready(state.service_url)
        _say(f"[{name}] replaying {s.requests} requests from {s.clients} clients")
        replay, burst = asyncio.run(
            measure(state.service_url, seeded.query_log_path, s, run_dir.name)
        )
    finally:
        stopped = stack.down(run_dir)
    # Everything is stopped: drop the data (PostgreSQL's lives outside run_dir as root).
    if stopped is not None and stopped.pg_data_dir:
        shutil.rmtree(Path(stopped.pg_data_dir).parent, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return ConfigResult(name, env, replay, burst)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- report


ROWS: list[tuple[str, str]] = [
    ("requests", "{:d}"),
    ("errors", "{:d}"),
    ("throughput", "{:.0f} req/s"),
    ("p50_ms", "{:.1f} ms"),
    ("p95_ms", "{:.1f} ms"),
    ("p99_ms", "{:.1f} ms"),
    ("hit_ratio", "{:.1%}"),
    ("db_searches", "{:d}"),
    ("coalesced", "{:d}"),
    ("lock_acquired", "{:d}"),
    ("lock_waited", "{:d}"),
    ("writes", "{:d}"),
    ("kept", "{:d}"),
    ("dropped", "{:d}"),
]


def render(results: list[ConfigResult], phase: str) -> str:
    phases = [getattr(r, phase) for r in results]
    head = f"| {phase:<14} | " + " | ".join(f"{r.name:>12}" for r in results) + " |"
    lines = [head, "|" + "-" * 16 + "|" + "|".join("-" * 13 + ":" for _ in results) + "|"]
    for field, fmt in ROWS:
        cells = [fmt.format(getattr(p, field)) for p in phases]
        lines.append(f"| {field:<14} | " + " | ".join(f"{c:>12}" for c in cells) + " |")
    a = phases[0].db_searches
    for other, p in zip(results[1:], phases[1:], strict=True):
        if p.db_searches:
            lines.append(
                f"\nDB searches, {results[0].name} vs {other.name}: "
                f"{1 - a / p.db_searches:.1%} fewer"
            )
    return "\n".join(lines)


def to_json(results: list[ConfigResult], s: BenchSettings) -> dict[str, Any]:
    def phase(p: Phase | None) -> dict[str, Any] | None:
        return None if p is None else {**asdict(p), "hit_ratio": round(p.hit_ratio, 4)}

    a, b = results[0].replay.db_searches, results[1].replay.db_searches
    return {
        "version": RESULT_VERSION,
        "settings": asdict(s),
        "configurations": [
            {"name": r.name, "env": r.env, "replay": phase(r.replay), "burst": phase(r.burst)}
            for r in results
        ],
        "db_search_reduction": round(1 - a / b, 4) if b else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--docs", type=int, default=20_000, help="corpus size (default 20000)")
    p.add_argument("--requests", type=int, default=20_000, help="counted replay requests")
    p.add_argument("--warmup", type=int, default=1_000, help="uncounted warm-up requests")
    p.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
    p.add_argument("--workers", type=int, default=1, help="service workers (default 1)")
    p.add_argument("--embedder", choices=("hash", "minilm"), default="hash")
    p.add_argument("--seed", type=int, default=42, help="corpus and sampling seed")
    p.add_argument("--lock", action="store_true", help="compare lock off/on (+ a cold burst)")
    p.add_argument(
        "--matrix", action="store_true", help="all optimisations on, then each one off alone"
    )
    p.add_argument(
        "--validate",
        action="store_true",
        help="compare delta validation on/off and the cache off (use with --write-fraction)",
    )
    p.add_argument(
        "--write-fraction",
        type=float,
        default=0.0,
        help="fraction of replayed searches followed by an ingest + delete (default 0)",
    )
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    try:
        s = BenchSettings(
            docs=args.docs,
            requests=args.requests,
            warmup=args.warmup,
            clients=args.clients,
            workers=args.workers,
            embedder=args.embedder,
            seed=args.seed,
            lock=args.lock,
            matrix=args.matrix,
            validate=args.validate,
            write_fraction=args.write_fraction,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = [run_config(name, env, s) for name, env in configurations(s)]
    print(render(results, "replay"))
    if s.lock:
        print()
        print(render(results, "burst"))
    if args.json:
        args.json.write_text(json.dumps(to_json(results, s), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
