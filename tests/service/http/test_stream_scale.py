"""SSE under pressure, over real HTTP: 2000 concurrent streams on one worker; slow readers.

The client is ``benchmarks/sse_burst.py`` (raw asyncio sockets in this process). The service
is one uvicorn worker over the session's 20k-document corpus (hash embedder).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil
import pytest

from benchmarks.sse_burst import Reader, burst
from ci.seed import SeedResult
from service.http.app import create_app
from service.settings import Settings
from tests.harness import Servers, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(240)]

STREAMS = 2000


def raise_nofile(need: int) -> None:
    """Both ends of every stream live on this machine: this process needs the sockets too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} sockets")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def stream_paths(query_log: Path, n: int, k: int, seed: int = 1) -> list[str]:
    queries = json.loads(query_log.read_text())["queries"]
    rng = random.Random(seed)
    picked = rng.choices(queries, weights=[float(q["weight"]) for q in queries], k=n)
    return ["/v1/search/stream?" + urlencode({"q": q["q"], "k": k}) for q in picked]


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def service_backends_busy(database_url: str) -> int:
    """The service's backends running a statement or inside a transaction."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'search-service' "
                "AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (proc, *proc.children(recursive=True))) / 2**20


@pytest.mark.scale
async def test_two_thousand_concurrent_streams_on_one_worker(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    raise_nofile(2 * STREAMS + 1024)
    svc = service_factory(SEARCH_INDEX_MODE="hnsw")
    paths = stream_paths(corpus.query_log_path, STREAMS, k=200)
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()
        # every reader holds its stream 3 s after the first event: all 2000 are open at once
        result = await burst(svc.url, paths, Reader(hold_s=3.0, timeout_s=120))
        after = (await client.get("/v1/stats")).json()
    errors = sorted({o.error for o in result.outcomes if o.error})[:3]
    shed = after["shed"] - before["shed"]
    assert result.refused == 0, (result.statuses, errors, shed, after["cache"])
    assert result.complete == STREAMS, errors
    assert all(o.results == 200 for o in result.outcomes)
    assert result.max_open() == STREAMS
    assert after["shed"] == before["shed"]
    assert after["pool_acquire_timeouts"] == before["pool_acquire_timeouts"]
    # identical streams shared their computations: about one search per distinct query (a
    # few more when a generation read beyond the 50 ms Redis timeout made a stream bypass)
    distinct = len(set(paths))
    assert after["db_searches"] - before["db_searches"] <= distinct * 1.05


async def test_slow_readers_hold_no_database_connection_nor_the_service(
    service_factory: ServiceFactory, corpus: SeedResult, servers: Servers
) -> None:
    """Readers taking ~120 KB at ~10 KB/s: while they read, nothing of them is in the service.

    Each stream's query runs whole, its connection goes back to the pool, and the stream is
    written out; what a slow reader has not read yet waits in the kernel's socket buffers
    (on Linux up to net.ipv4.tcp_wmem's maximum per socket, 4 MiB by default), not in the
    service: no backend, no pooled connection, no open-stream slot, no growing RSS.
    """
    svc = service_factory(SEARCH_INDEX_MODE="hnsw")
    paths = stream_paths(corpus.query_log_path, 200, k=1000, seed=2)
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        await burst(svc.url, paths, Reader())  # the caches fill: what follows is the streams
        start_mb = rss_mb(svc.pid)
        slow = Reader(rcvbuf=4096, read_size=1024, read_delay_s=0.1, timeout_s=120)
        task = asyncio.create_task(burst(svc.url, paths, slow))
        peak_mb = start_mb
        for _ in range(30):  # 3 s of ~12 s of reading
            await asyncio.sleep(0.1)
            peak_mb = max(peak_mb, rss_mb(svc.pid))
        text = (await client.get("/metrics")).text
        busy = [await service_backends_busy(servers.database_url) for _ in range(3)]
        assert not task.done(), "the slow readers finished before they could be checked"
        result = await task
    assert busy == [0, 0, 0]
    assert metric(text, "search_db_pool_in_use") == 0
    assert metric(text, "search_streams_open") == 0
    assert result.complete == len(paths), sorted({o.error for o in result.outcomes})[:3]
    assert min(o.total_s - (o.ttfe_s or 0) for o in result.outcomes) > 5.0  # they were slow
    # 200 streams of 120 KB are 24 MB: a service that kept them would grow by that
    assert peak_mb - start_mb < 12, (start_mb, peak_mb)


STALLED = 100
WRITE_TIMEOUT_S = 3.0


@pytest.mark.scale
async def test_stalled_readers_hold_no_connection_bounded_memory_until_the_write_timeout(
    corpus: SeedResult, servers: Servers
) -> None:
    """The service in this process, each stream's send blocking after its first event (a
    reader whose socket buffers are full): while 100 such streams wait, no backend works or
    sits in a transaction for them and no pooled connection is out; each holds at most its
    (shared, encoded) result; the write timeout ends every one of them."""
    settings = Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        embedder="hash",
        index_mode="hnsw",
        stream_write_timeout_s=WRITE_TIMEOUT_S,
        stream_cache_mb=1.0,  # the cache keeps a few: the blocked streams hold the rest
        gc_freeze=False,
    )
    app = create_app(settings)
    stalled = asyncio.Event()  # never set
    first_events: list[int] = []

    statuses: list[object] = []

    async def call(i: int) -> list[bytes]:
        bodies: list[bytes] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            if message["type"] == "http.response.body":
                bodies.append(message["body"])  # type: ignore[arg-type]
                if len(bodies) == 1:
                    first_events.append(i)
                else:
                    await stalled.wait()

        async def receive() -> dict[str, object]:
            await stalled.wait()  # the client stays connected
            raise AssertionError("unreachable")

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/search/stream",
            "raw_path": b"/v1/search/stream",
            "query_string": urlencode({"q": f"stalled reader {i}", "k": 500}).encode(),
            "headers": [],
            "root_path": "",
            "scheme": "http",
            "server": ("test", 80),
            "client": ("127.0.0.1", 1000 + i),
            "http_version": "1.1",
            "app": app,
        }
        await app(scope, receive, send)  # type: ignore[arg-type]
        return bodies

    async with app.router.lifespan_context(app):
        metrics = app.state.metrics
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            tasks = [asyncio.create_task(call(i)) for i in range(STALLED)]
            while len(first_events) < STALLED:
                await asyncio.sleep(0.05)
                assert time.perf_counter() - start < WRITE_TIMEOUT_S, "first events too slow"
            held = tracemalloc.get_traced_memory()[0] - before
            busy = await service_backends_busy(servers.database_url)
            in_use = metric(metrics.exposition()[0].decode(), "search_db_pool_in_use")
            open_now = metric(metrics.exposition()[0].decode(), "search_streams_open")
            bodies = await asyncio.wait_for(asyncio.gather(*tasks), WRITE_TIMEOUT_S * 3)
            elapsed = time.perf_counter() - start
            after = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        text = metrics.exposition()[0].decode()
    assert statuses == [200] * STALLED, [
        b[0][:200] for b in bodies if not b[0].startswith(b"event")
    ]
    assert busy == 0
    assert in_use == 0
    assert open_now == STALLED
    # each blocked stream holds its encoded batches (k=500: ~60 KB) and one frame; the
    # rest (pool connections, Redis, the 1 MB cache) is the same for any number of streams
    stream_bytes = max(len(body[0]) for body in bodies) * 10  # the first of 10 batches
    assert held < STALLED * 2 * stream_bytes + 16 * 2**20, (held, stream_bytes)
    assert all(len(b) == 2 for b in bodies)  # the first event, then the send that blocked
    assert elapsed >= WRITE_TIMEOUT_S
    assert metric(text, "search_stream_write_timeouts_total") == STALLED
    assert metric(text, "search_streams_open") == 0
    # what the streams held is released when the write timeout ends them
    assert held - after > 0.8 * STALLED * stream_bytes, (held, after, stream_bytes)
