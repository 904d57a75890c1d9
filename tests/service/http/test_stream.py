"""SSE streaming: the whole result before the first event (headers with it), a client leaving."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import orjson
import pytest

from tests.harness import RunningService, Servers, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]


def parse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], orjson.loads(lines["data"])))
    return events


def test_stream_sends_all_results_in_batches_then_done(search_service: RunningService) -> None:
    resp = httpx.get(
        f"{search_service.url}/v1/search/stream",
        params={"q": "marathon training", "k": 1000},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = parse_events(resp.text)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done"
    assert kinds[:-1] == ["results"] * 20  # 1000 results in batches of 50
    ids = [r["id"] for _, d in events[:-1] for r in d["results"]]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)) == 1000
    assert events[-1][1]["count"] == 1000


def test_stream_bad_input_is_a_json_error(search_service: RunningService) -> None:
    resp = httpx.get(f"{search_service.url}/v1/search/stream", params={"q": "x", "k": 0})
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "k"


@pytest.fixture(scope="module")
def slow_stream_service(module_service_factory: ServiceFactory, corpus: object) -> RunningService:
    """Each search waits 1 s in PostgreSQL (inside its transaction) before it runs."""
    return module_service_factory(SEARCH_STREAM_BATCH_SIZE="50", SEARCH_DEBUG_DB_DELAY_MS="1000")


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def _busy_backends(database_url: str) -> int:
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


async def test_the_query_is_done_and_its_connection_free_before_the_first_event(
    slow_stream_service: RunningService, servers: Servers
) -> None:
    url = f"{slow_stream_service.url}/v1/search/stream"
    params: dict[str, str | int] = {"q": "opera choir", "k": 1000}
    async with httpx.AsyncClient(timeout=30) as client:
        start = time.perf_counter()
        async with client.stream("GET", url, params=params) as resp:
            chunks = resp.aiter_text()  # kept open: leaving a loop over it would close it
            first = await anext(chunks)
            first_at = time.perf_counter() - start
            # the client has read one event; nothing of its stream is left in the database
            busy = await _busy_backends(servers.database_url)
            metrics = (await client.get(f"{slow_stream_service.url}/metrics")).text
            rest = "".join([chunk async for chunk in chunks])
    assert first.startswith("event: results")
    assert first_at >= 1.0, "the first event came before the query's 1 s in the database"
    assert busy == 0
    assert _gauge(metrics, "search_db_pool_in_use") == 0
    events = parse_events(first + rest)
    assert events[-1] == ("done", events[-1][1])
    assert events[-1][1]["count"] == 1000


async def test_a_client_gone_before_the_first_event_frees_its_stream_at_once(
    slow_stream_service: RunningService,
) -> None:
    """The stream ends when its client leaves; the shared query finishes for the cache."""
    host, port = slow_stream_service.url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=slow_stream_service.url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()
        _, writer = await asyncio.open_connection(host, int(port))
        path = "/v1/search/stream?q=black+holes+gone&k=300"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.3)  # the service is waiting for the query (1 s)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.3)  # still inside the query's second
        metrics = (await client.get("/metrics")).text
        mid = (await client.get("/v1/stats")).json()
        await asyncio.sleep(1.0)
        after = (await client.get("/v1/stats")).json()
    assert _gauge(metrics, "search_streams_open") == 0
    assert mid["stream_disconnects"] - before["stream_disconnects"] == 1
    assert after["db_searches"] - before["db_searches"] == 1  # the query was not abandoned


async def test_a_send_the_reader_never_takes_ends_the_stream_at_the_write_timeout() -> None:
    """What a reader that stops costs once the socket buffers are full: one blocked send."""
    from service.cache.results import CachedResult
    from service.http.stream import search_events
    from service.model import Hit
    from service.stream_search import encode

    hits = tuple(Hit(i, f"title {i}", 0.5, "misc/x") for i in range(120))
    encoded = encode(CachedResult.of(hits, 0.0, 1e12), 50)
    sent: list[dict[str, object]] = []
    timeouts: list[int] = []
    stalled = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        if len(sent) == 3:  # the second results event: the buffers are full from here
            await stalled.wait()

    async def receive() -> dict[str, object]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    response = search_events(
        encoded,
        started=time.perf_counter(),
        write_timeout_s=0.2,
        on_write_timeout=lambda: timeouts.append(1),
    )
    start = time.perf_counter()
    await asyncio.wait_for(response({"type": "http"}, receive, send), 5)  # type: ignore[arg-type]
    assert 0.2 <= time.perf_counter() - start < 1.0
    assert timeouts == [1]
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 2]
    assert all(m.get("more_body", True) for m in sent)  # never completed: uvicorn closes it


async def test_events_are_framed_as_before() -> None:
    """Encoded once, the events are byte for byte what sse_event() gives for their data."""
    from service.cache.results import CachedResult
    from service.http.stream import results_event, sse_event
    from service.model import Hit
    from service.stream_search import encode

    hits = tuple(Hit(i, f"t{i}", 0.25, "a/b") for i in range(3))
    (batch,) = encode(CachedResult.of(hits, 0.0, 1e12), 50).batches
    data = {"batch": 4, "elapsed_ms": 1.5, "results": [h.as_dict() for h in hits]}
    assert results_event(4, 1.5, batch) == sse_event("results", data)
