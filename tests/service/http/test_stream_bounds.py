"""The two bounds over real HTTP: query work in flight, and open streams (service.limits)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import pytest

from ci.seed import SeedResult
from service.limits import RETRY_AFTER_S
from tests.harness import ServiceFactory
from tests.service.http.test_stream_scale import metric
from tests.sse_burst import Reader, burst

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

DELAY_MS = 800


def _path(q: str, k: int) -> str:
    return "/v1/search/stream?" + urlencode({"q": q, "k": k})


async def test_identical_streams_share_one_query_and_one_in_flight_unit(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_MAX_IN_FLIGHT="2",
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


async def test_distinct_streams_beyond_the_in_flight_bound_wait_their_turn_then_get_503(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    """Bound 2, six distinct streams, each query 600 ms: two run, the next two wait for
    their units (0.6 s), the last two would wait past Retry-After and get the 503 then."""
    delay_ms = 600
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_MAX_IN_FLIGHT="2",
        SEARCH_DEBUG_DB_DELAY_MS=str(delay_ms),
        SEARCH_CACHE_ENABLED="0",
    )
    paths = [_path(f"distinct stream {i}", 300) for i in range(6)]
    result = await burst(svc.url, paths, Reader())
    assert result.statuses == {200: 4, 503: 2}
    for o in result.outcomes:
        if o.status == 503:
            assert o.retry_after == str(RETRY_AFTER_S)
            # refused after the wait, not after query work of its own
            assert RETRY_AFTER_S <= o.total_s < RETRY_AFTER_S + delay_ms / 1000, o.total_s


async def test_open_streams_have_their_own_bound_and_do_not_block_searches(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    """3 streams waiting on slow queries fill SEARCH_MAX_STREAMS=3: a 4th is refused at once,
    searches are not (they have the in-flight bound)."""
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
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
