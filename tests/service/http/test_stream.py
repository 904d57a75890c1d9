"""SSE streaming: batches as the cursor reads them, headers with the first event, cancel."""

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
def slow_stream_service(service_factory: ServiceFactory, corpus: object) -> RunningService:
    """Each cursor fetch waits 100 ms in PostgreSQL, so a stream of 20 batches takes ~2 s."""
    return service_factory(SEARCH_STREAM_BATCH_SIZE="50", SEARCH_DEBUG_DB_DELAY_MS="100")


def test_first_events_arrive_before_the_query_finishes(
    slow_stream_service: RunningService,
) -> None:
    with httpx.stream(
        "GET",
        f"{slow_stream_service.url}/v1/search/stream",
        params={"q": "opera choir", "k": 1000},
        timeout=30,
    ) as resp:
        start = time.perf_counter()
        chunks = resp.iter_text()
        first_chunk = next(chunks)
        first_at = time.perf_counter() - start
        rest = "".join(chunks)
        total = time.perf_counter() - start
    assert first_chunk.startswith("event: results")
    events = parse_events(first_chunk + rest)
    assert events[-1][0] == "done"
    # 19 more fetches of 100 ms each follow the first event
    assert total - first_at > 1.0, (first_at, total)


async def _active_stream_queries(database_url: str) -> int:
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


async def test_disconnect_cancels_the_query(
    slow_stream_service: RunningService, servers: Servers
) -> None:
    url = f"{slow_stream_service.url}/v1/search/stream"
    params: dict[str, str | int] = {"q": "black holes", "k": 1000}
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, params=params) as resp,
    ):
        chunks = resp.aiter_text()  # kept open: leaving a loop over it would close it
        assert (await anext(chunks)).startswith("event: results")
        assert await _active_stream_queries(servers.database_url) >= 1
    # the client is gone: the cursor's transaction must end well before the 2 s it needs
    deadline = time.perf_counter() + 1.0
    while time.perf_counter() < deadline:
        if await _active_stream_queries(servers.database_url) == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the stream's query was still running 1 s after the client disconnected")
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{slow_stream_service.url}/v1/stats")).json()
    assert stats["stream_disconnects"] >= 1
