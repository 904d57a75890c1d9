"""The two bounds over real HTTP: query work in flight, and open streams (service.limits)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from benchmarks.sse_burst import Reader, burst
from ci.seed import SeedResult
from service.limits import RETRY_AFTER_S
from tests.harness import ServiceFactory
from tests.service.http.test_stream_scale import metric

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

DELAY_MS = 800
# few pooled connections each: the session's services share one PostgreSQL
# (max_connections 300), and these run two queries at a time
POOL_MIN = "2"


def _path(q: str, k: int) -> str:
    return "/v1/search/stream?" + urlencode({"q": q, "k": k})


async def test_identical_streams_share_one_query_and_one_query_slot(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_POOL_MIN_SIZE=POOL_MIN,
        SEARCH_STREAM_QUERY_SLOTS="2",
        SEARCH_DEBUG_DB_DELAY_MS=str(DELAY_MS),
        # a lookup past the 50 ms default skips the cache, and its stream flies under the
        # bypass key, apart from the others: the likely cause of the 2 searches one full run
        # on a loaded machine counted. This test is about sharing, not about Redis
        # timeouts (tests/service/cache has those)
        SEARCH_REDIS_TIMEOUT_MS="2000",
    )
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()
        result = await burst(svc.url, [_path("share one query", 300)] * 40, Reader())
        after = (await client.get("/v1/stats")).json()
    assert (result.refused, result.complete) == (0, 40)
    assert after["db_searches"] - before["db_searches"] == 1
    assert after["shed"] == before["shed"]


async def test_a_burst_of_distinct_streams_beyond_the_query_slots_is_served_in_turn(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    """Two query slots, twelve distinct streams at once, each query 300 ms: they queue and are all
    served, the last ones well after Retry-After (1 s): a stream is refused by the queue's
    estimated work, never by the time it has waited."""
    delay_ms = 300
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_POOL_MIN_SIZE=POOL_MIN,
        SEARCH_STREAM_QUERY_SLOTS="2",
        SEARCH_DEBUG_DB_DELAY_MS=str(delay_ms),
        SEARCH_CACHE_ENABLED="0",
    )
    paths = [_path(f"queued stream {i}", 300) for i in range(12)]
    result = await burst(svc.url, paths, Reader())
    assert result.statuses == {200: 12}
    assert result.complete == 12
    last = result.ttfe_quantile(1.0)
    assert last is not None
    assert last > RETRY_AFTER_S + delay_ms / 1000, last  # 6 rounds of 2 queries


async def test_a_queue_whose_estimated_wait_exceeds_the_limit_refuses_with_503_saying_so(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    """Two query slots, a limit of 1.5 s, each query 800 ms (measured by a first stream): the
    queue hands out a unit every 0.4 s, so of eight distinct streams at once two run,
    three queue (0.4, 0.8, 1.2 s) and the last three (1.6 s and more) are refused at once."""
    delay_ms = 800
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_POOL_MIN_SIZE=POOL_MIN,
        SEARCH_STREAM_QUERY_SLOTS="2",
        SEARCH_DEBUG_DB_DELAY_MS=str(delay_ms),
        SEARCH_STREAM_MAX_QUEUE_WAIT_S="1.5",
        SEARCH_CACHE_ENABLED="0",
    )
    first = await burst(svc.url, [_path("measures the time per query", 300)], Reader())
    assert first.statuses == {200: 1}
    paths = [_path(f"distinct stream {i}", 300) for i in range(8)]
    result = await burst(svc.url, paths, Reader())
    assert result.statuses == {200: 5, 503: 3}
    for o in result.outcomes:
        if o.status == 503:
            message = orjson.loads(o.refusal)["error"]["message"]
            assert message.startswith("overloaded: "), message
            assert "more than the 1.5 s a stream may queue" in message, message
            assert "(SEARCH_STREAM_MAX_QUEUE_WAIT_S)" in message, message
            assert o.retry_after == "2", o.retry_after  # ceil(1.6 s) and more: 2 or above
            assert o.total_s < delay_ms / 1000, o.total_s  # at once, not after a wait


async def test_open_streams_have_their_own_bound_and_do_not_block_searches(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    """3 streams waiting on slow queries fill SEARCH_MAX_STREAMS=3: a 4th is refused at once,
    searches are not (they have the in-flight bound)."""
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_POOL_MIN_SIZE=POOL_MIN,
        SEARCH_MAX_STREAMS="3",
        SEARCH_MAX_IN_FLIGHT="5",
        SEARCH_DEBUG_DB_DELAY_MS=str(DELAY_MS),
    )
    held = asyncio.create_task(
        burst(svc.url, [_path(f"held stream {i}", 100) for i in range(3)], Reader())
    )
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        for _ in range(50):
            await asyncio.sleep(0.02)
            if metric((await client.get("/metrics")).text, "search_streams_open") == 3:
                break
        else:
            pytest.fail("the held streams never filled the stream bound")
        extra = await client.get("/v1/search/stream", params={"q": "one too many", "k": 10})
        searches = await asyncio.gather(
            *(client.get("/v1/search", params={"q": f"still served {i}", "k": 5}) for i in range(2))
        )
        health = await client.get("/healthz")
        result = await held
        after = metric((await client.get("/metrics")).text, "search_streams_open")
    assert extra.status_code == 503
    assert extra.headers["retry-after"] == "1"
    assert extra.json()["error"]["message"] == "overloaded: more than 3 open streams"
    assert [r.status_code for r in searches] == [200, 200]
    assert health.status_code == 200
    assert (result.refused, result.complete) == (0, 3)
    assert after == 0
