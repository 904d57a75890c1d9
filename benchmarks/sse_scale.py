"""SSE at scale: bursts of N concurrent streams against one worker; refused, TTFE, memory.

For each N in ``--streams`` the client (``benchmarks/sse_burst.py``: raw asyncio sockets, one
process) opens N streams of ``/v1/search/stream?q=...&k=K``, in one of two bursts:

- ``--burst zipf`` (the default): queries drawn from the query log by weight (a fresh seeded
  draw per burst), opened at once or spread over ``--ramp`` seconds: a popular mix;
- ``--burst storm``: all at once, mostly distinct, as a client fleet reconnecting after a
  deploy: ``--distinct`` of the N streams (a share, 0.65 by default) ask distinct queries of
  the log, the rest repeat one of those at random (``--ramp`` is ignored).

Each reader waits for its first event
(time to first event, TTFE, from the start of its connect), holds the stream ``--hold``
seconds reading nothing, then reads the rest and checks it ended with ``done`` and the
announced count. Per burst: streams refused (any status but 200, and why), TTFE p50/p95/
p99/max, complete streams, the service's peak RSS during the burst, and the deltas of its
``/v1/stats`` counters (database searches, shed requests, pool acquire timeouts).

Without ``--target`` it starts its own stack (PostgreSQL, Valkey, one uvicorn worker) in a
temporary folder, seeds ``--docs`` documents with ``--embedder``, warms up like ``perfci
run`` (the 50 most popular queries), and stops everything by PID at the end.

    python -m benchmarks.sse_scale --streams 500,1000,2000 --k 200 --hold 5 --json out.json
    python -m benchmarks.sse_scale --burst storm --streams 2000 --k 200 --hold 5 \\
        --embedder hash --env SEARCH_MAX_STREAMS=4096
    python -m benchmarks.sse_scale --target http://127.0.0.1:8000 --query-log q.json ...

Run it under ``flock /tmp/perfci-measure.lock``: the client shares the cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil

from benchmarks.sse_burst import BurstResult, Reader, burst
from ci import stack
from ci.seed import seed_corpus

WARMUP_QUERIES = 50  # as perfci run's warm-up
COUNTERS = ("db_searches", "shed", "pool_acquire_timeouts", "requests", "stream_disconnects")
CACHE_COUNTERS = ("redis_errors", "redis_skipped", "coalesced")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    query_log: Path
    pid: int | None  # the service's PID, for its RSS (None: not sampled)


def stream_paths(query_log: Path, n: int, k: int, seed: int) -> list[str]:
    """``n`` stream paths drawn from the query log by weight (text only, as k6's streamUrl)."""
    queries = json.loads(query_log.read_text())["queries"]
    weights = [float(q["weight"]) for q in queries]
    rng = random.Random(seed)
    return [
        "/v1/search/stream?" + urlencode({"q": q["q"], "k": k})
        for q in rng.choices(queries, weights=weights, k=n)
    ]


def storm_paths(query_log: Path, n: int, k: int, seed: int, distinct: float) -> list[str]:
    """``n`` stream paths, ``round(n * distinct)`` of them distinct queries of the log
    (uniformly, without replacement), the others repeating one of those; shuffled."""
    assert 0 < distinct <= 1, f"distinct must be in (0, 1], got {distinct}"
    queries = [q["q"] for q in json.loads(query_log.read_text())["queries"]]
    unique = sorted(set(queries))
    want = max(1, round(n * distinct))
    if want > len(unique):
        raise ValueError(
            f"--distinct {distinct} of {n} streams needs {want} distinct queries, "
            f"the query log has {len(unique)}"
        )
    rng = random.Random(seed)
    distinct_texts = rng.sample(unique, want)
    texts = distinct_texts + [rng.choice(distinct_texts) for _ in range(n - want)]
    rng.shuffle(texts)
    return ["/v1/search/stream?" + urlencode({"q": q, "k": k}) for q in texts]


def warm_up(url: str, query_log: Path) -> None:
    queries = json.loads(query_log.read_text())["queries"]
    popular = sorted(queries, key=lambda q: -float(q["weight"]))[:WARMUP_QUERIES]
    with httpx.Client(base_url=url, timeout=30) as client:
        for q in popular:
            params = {"q": q["q"], "k": q["k"], **({"topic": q["topic"]} if q["topic"] else {})}
            client.get("/v1/search", params=params).raise_for_status()


def stats(url: str) -> dict[str, Any]:
    resp = httpx.get(url + "/v1/stats", timeout=30)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


class PeakRss:
    """Samples the RSS of a process and its children every 50 ms in a thread."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_mb(self) -> float:
        assert self.pid is not None, "sampling needs a pid"
        proc = psutil.Process(self.pid)
        procs = [proc, *proc.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> PeakRss:
        if self.pid is not None:
            self.start_mb = self.peak_mb = self._rss_mb()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@contextlib.contextmanager
def py_spy(pid: int | None, out: Path | None, seconds: float) -> Iterator[None]:
    """``py-spy record`` of the service for the block (a flame graph), when asked for."""
    if out is None or pid is None:
        yield
        return
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when run from one
    exe = str(beside) if beside.exists() else "py-spy"
    cmd = [exe, "record", "-p", str(pid), "-o", str(out), "-d", str(int(seconds) + 1)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the burst starts
    try:
        yield
    finally:
        proc.wait(timeout=seconds + 30)


@dataclass(frozen=True, slots=True)
class BurstShape:
    """How a burst's streams are drawn and opened (see the module docstring)."""

    kind: str  # "zipf" or "storm"
    ramp_s: float = 0.0  # zipf only
    distinct: float = 0.65  # storm only: the share of distinct queries

    def paths(self, query_log: Path, n: int, k: int, seed: int) -> list[str]:
        if self.kind == "storm":
            return storm_paths(query_log, n, k, seed, self.distinct)
        return stream_paths(query_log, n, k, seed)


def one_burst(
    target: Target,
    n: int,
    k: int,
    reader: Reader,
    seed: int,
    shape: BurstShape,
    flame: Path | None = None,
) -> dict[str, Any]:
    paths = shape.paths(target.query_log, n, k, seed)
    ramp_s = shape.ramp_s if shape.kind == "zipf" else 0.0
    before = stats(target.url)
    with PeakRss(target.pid) as rss, py_spy(target.pid, flame, reader.hold_s + ramp_s + 3):
        result: BurstResult = asyncio.run(burst(target.url, paths, reader, ramp_s=ramp_s))
    after = stats(target.url)
    errors = sorted({o.error for o in result.outcomes if o.error})[:5]
    return {
        **result.summary(),
        "k": k,
        "hold_s": reader.hold_s,
        "burst": shape.kind,
        "ramp_s": ramp_s,
        "distinct_queries": len(set(paths)),
        "rss_start_mb": round(rss.start_mb, 1),
        "rss_peak_mb": round(rss.peak_mb, 1),
        "server": {c: after.get(c, 0) - before.get(c, 0) for c in COUNTERS},
        "cache": {c: after["cache"].get(c, 0) - before["cache"].get(c, 0) for c in CACHE_COUNTERS},
        "breaker": after["cache"].get("breaker_state"),
        "client_errors": errors,
        "refusals": sorted(
            {o.refusal.decode("utf-8", "replace") for o in result.outcomes if o.refusal}
        )[:5],
    }


@contextlib.contextmanager
def own_stack(args: argparse.Namespace) -> Iterator[Target]:
    env = {"SEARCH_EMBEDDER": args.embedder, **dict(kv.split("=", 1) for kv in args.env)}
    with tempfile.TemporaryDirectory(prefix="sse-scale-") as tmp:
        run_dir = Path(tmp)
        servers = stack.start_server_set(stack.loopback_settings(run_dir))
        try:
            progress(f"seeding {args.docs} documents ({args.embedder})")
            seeded = seed_corpus(
                run_dir,
                servers.pg.url,
                args.docs,
                args.seed,
                {"SEARCH_EMBEDDER": args.embedder, "REDIS_URL": servers.valkey.url},
            )
            comp = servers.start_service(run_dir / "service", workers=1, service_env=env)
            assert comp.url is not None, "a started service has a URL"
            yield Target(comp.url, seeded.query_log_path, comp.pid)
        finally:
            servers.close(remove_data=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'streams':>7} {'distinct':>8} {'refused':>7} {'complete':>8} {'TTFE p50':>9} "
        f"{'p95':>8} {'p99':>8} "
        f"{'max':>8} {'DB searches':>11} {'RSS peak MB':>11} {'wall s':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['streams']:>7} {r['distinct_queries']:>8} {r['refused']:>7} {r['complete']:>8} "
            f"{r['ttfe_p50_ms']!s:>9} "
            f"{r['ttfe_p95_ms']!s:>8} {r['ttfe_p99_ms']!s:>8} {r['ttfe_max_ms']!s:>8} "
            f"{r['server']['db_searches']:>11.0f} {r['rss_peak_mb']:>11} {r['wall_s']:>6}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="a running service (default: start a stack)")
    parser.add_argument("--query-log", type=Path, help="with --target: the query log")
    parser.add_argument("--pid", type=int, help="with --target: the service PID (for RSS)")
    parser.add_argument("--streams", default="500,1000,2000", help="comma-separated N")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds held after event 1")
    parser.add_argument(
        "--burst",
        choices=("zipf", "storm"),
        default="zipf",
        help="zipf: by weight, over --ramp; storm: all at once, mostly distinct",
    )
    parser.add_argument("--ramp", type=float, default=0.0, help="zipf: spread over S s")
    parser.add_argument(
        "--distinct", type=float, default=0.65, help="storm: share of distinct queries"
    )
    parser.add_argument("--repeat", type=int, default=1, help="bursts per N")
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hash"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--env", action="append", default=[], help="SEARCH_X=V for the service")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--flame-dir", type=Path, help="py-spy flame graph per burst, here")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.streams.split(",") if x.strip()]
    if not 0 < args.distinct <= 1:
        parser.error(f"--distinct {args.distinct}: expected a share in (0, 1]")
    shape = BurstShape(args.burst, args.ramp, args.distinct)
    reader = Reader(hold_s=args.hold, timeout_s=max(60.0, args.hold + 60))
    if args.target and args.query_log is None:
        parser.error("--target needs --query-log")
    ctx = (
        contextlib.nullcontext(Target(args.target.rstrip("/"), args.query_log, args.pid))
        if args.target
        else own_stack(args)
    )
    rows = []
    with ctx as target:
        warm_up(target.url, target.query_log)
        progress(f"warmed up with the {WARMUP_QUERIES} most popular queries")
        for rep in range(args.repeat):
            for n in counts:
                flame = None
                if args.flame_dir is not None:
                    args.flame_dir.mkdir(parents=True, exist_ok=True)
                    flame = args.flame_dir / f"burst-{n}-round{rep}.svg"
                seed = args.seed + 1000 * rep + n
                try:
                    row = one_burst(target, n, args.k, reader, seed, shape, flame)
                except ValueError as exc:  # a storm larger than the query log
                    parser.error(str(exc))
                row["round"] = rep
                rows.append(row)
                progress(json.dumps(row))
                time.sleep(1.0)  # the held connections close before the next burst
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
