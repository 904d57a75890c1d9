"""Load shedding over real HTTP: beyond SEARCH_MAX_IN_FLIGHT, 503 at once; the rest succeed;
the one request middleware counts every request, the shed ones too."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ci.seed import SeedResult
from service.http.middleware import RequestMiddleware
from service.limits import Bound
from service.metrics import Metrics
from tests.harness import ServiceFactory
from tests.service.cache.wire import total

LIMIT = 2
DELAY_MS = 1500


async def _timed(client: httpx.AsyncClient, i: int) -> tuple[int, float, httpx.Headers, str]:
    start = time.perf_counter()
    # distinct queries, cache and coalescing off: each admitted request reaches the database
    resp = await client.get("/v1/search", params={"q": f"shed probe number {i}", "k": 3})
    return resp.status_code, time.perf_counter() - start, resp.headers, resp.text


@pytest.mark.stack
@pytest.mark.timeout(120)
async def test_requests_beyond_the_limit_are_shed_at_once(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(
        SEARCH_INDEX_MODE="hnsw",
        SEARCH_MAX_IN_FLIGHT=str(LIMIT),
        SEARCH_DEBUG_DB_DELAY_MS=str(DELAY_MS),
        SEARCH_CACHE_ENABLED="0",
        SEARCH_COALESCE_ENABLED="0",
    )
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()["shed"]
        first = [asyncio.create_task(_timed(client, i)) for i in range(LIMIT)]
        await asyncio.sleep(0.3)  # the first LIMIT are in flight, sleeping in the database
        rest = await asyncio.gather(*(_timed(client, 100 + i) for i in range(6)))
        admitted = await asyncio.gather(*first)
        # health and metrics are never shed, even at the limit
        assert (await client.get("/healthz")).status_code == 200
        after = (await client.get("/v1/stats")).json()["shed"]
        metrics = (await client.get("/metrics")).text
    for status, elapsed, headers, text in rest:
        assert status == 503, text
        assert headers["retry-after"] == "1"
        assert "overloaded" in text
        assert elapsed < 0.5, f"a shed request took {elapsed:.3f} s: it was queued"
    for status, elapsed, _, text in admitted:
        assert status == 200, text
        assert elapsed >= DELAY_MS / 1000
    assert after - before == 6
    assert "search_shed_requests_total 6.0" in metrics


async def _call(app: RequestMiddleware, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    return sent


def _slow_app(release: asyncio.Event) -> ASGIApp:
    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return slow_app


def _middleware(app: ASGIApp, queries: Bound, streams: Bound) -> RequestMiddleware:
    paths = ("/v1/search", "/v1/search/stream", "/healthz")
    return RequestMiddleware(app, Metrics(), queries, streams, 0, paths)


@pytest.mark.timeout(10)
async def test_middleware_counts_only_search_routes_and_zero_disables() -> None:
    release = asyncio.Event()
    shed: list[int] = []
    queries = Bound(1, "search requests in flight", lambda: shed.append(1))
    mw = _middleware(_slow_app(release), queries, Bound(0, "open streams"))
    held = asyncio.create_task(_call(mw, "/v1/search"))
    await asyncio.sleep(0.01)
    refused = await _call(mw, "/v1/search")
    assert refused[0]["status"] == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert b"more than 1 search requests in flight" in refused[1]["body"]
    # a stream is not query work for the middleware (its query takes a unit while it runs)
    stream = asyncio.create_task(_call(mw, "/v1/search/stream"))
    healthz = asyncio.create_task(_call(mw, "/healthz"))  # exempt: waits like any request
    await asyncio.sleep(0.01)
    assert not healthz.done()
    assert not stream.done()
    release.set()
    assert (await held)[0]["status"] == 200
    assert (await stream)[0]["status"] == 200
    assert (await healthz)[0]["status"] == 200
    assert queries.held == 0
    assert shed == [1]
    # every request counted by route and status, the shed one too
    assert total(mw.metrics.requests, route="/v1/search", status="503") == 1
    assert total(mw.metrics.requests, route="/v1/search", status="200") == 1
    assert total(mw.metrics.requests, route="/v1/search/stream", status="200") == 1
    assert total(mw.metrics.requests, route="/healthz", status="200") == 1

    off = _middleware(_slow_app(release), Bound(0, "q"), Bound(0, "open streams"))
    both = await asyncio.gather(_call(off, "/v1/search"), _call(off, "/v1/search"))
    assert [m[0]["status"] for m in both] == [200, 200]


@pytest.mark.timeout(10)
async def test_open_streams_have_a_bound_of_their_own() -> None:
    release = asyncio.Event()
    streams = Bound(2, "open streams")
    queries = Bound(1, "search requests in flight")
    mw = _middleware(_slow_app(release), queries, streams)
    held = [asyncio.create_task(_call(mw, "/v1/search/stream")) for _ in range(2)]
    await asyncio.sleep(0.01)
    refused = await _call(mw, "/v1/search/stream")
    search = asyncio.create_task(_call(mw, "/v1/search"))  # the stream bound is not its
    await asyncio.sleep(0.01)
    assert not search.done()
    release.set()
    assert refused[0]["status"] == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert b"overloaded: more than 2 open streams" in refused[1]["body"]
    assert [(await t)[0]["status"] for t in held] == [200, 200]
    assert (await search)[0]["status"] == 200
    assert (streams.held, streams.peak) == (0, 2)
