"""The result cache, coalescing and invalidation over real HTTP, PostgreSQL and Valkey."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from ci import stack
from tests.service.conftest import (
    CacheStack,
    ServiceFactory,
    ValkeyFactory,
    stop_service,
)

pytestmark = [
    pytest.mark.stack,
    pytest.mark.timeout(60),
]


def _unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


Params = dict[str, str | int]


async def _burst(url: str, n: int, params: Params) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        return list(
            await asyncio.gather(*[client.get("/v1/search", params=params) for _ in range(n)])
        )


async def _search_statement_calls(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        calls = await conn.fetchval(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query LIKE 'SELECT id, title, topic, %ORDER BY%LIMIT%'"
        )
        return int(calls)
    finally:
        await conn.close()


async def _reset_statements(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def test_100_identical_cold_requests_embed_and_search_once(
    cache_service_factory: ServiceFactory, cache_stack: CacheStack
) -> None:
    # The DB delay keeps the one computation in flight while all 100 requests arrive.
    svc = cache_service_factory(SEARCH_DEBUG_DB_DELAY_MS="300")
    try:
        before = svc.stats()
        await _reset_statements(cache_stack.database_url)
        responses = await _burst(svc.url, 100, {"q": _unique("telescope galaxies"), "k": 7})
        after = svc.stats()
        calls = await _search_statement_calls(cache_stack.database_url)
    finally:
        stop_service(svc)
    assert [r.status_code for r in responses] == [200] * 100
    assert len({orjson_results(r) for r in responses}) == 1
    assert after["embed_calls"] - before["embed_calls"] == 1
    assert after["db_searches"] - before["db_searches"] == 1
    assert calls == 1
    assert after["cache"]["coalesced"] == 99


def orjson_results(resp: httpx.Response) -> str:
    return repr(resp.json()["results"])


async def test_write_is_visible_to_the_next_search_on_both_workers(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(workers=2)
    word = uuid.uuid4().hex[:10]
    query: Params = {"q": f"quokka harmonics {word}", "k": 5}
    try:
        # warm every layer on both workers with the pre-write result
        warm = await _burst(svc.url, 40, query)
        assert all(r.status_code == 200 for r in warm)
        doc = {
            "title": f"Quokka harmonics {word}",
            "topic": "test/cache",
            "body": f"quokka harmonics {word} quokka harmonics {word}",
        }
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            resp = await client.post("/v1/documents", json={"documents": [doc]})
            assert resp.status_code == 201
            (doc_id,) = resp.json()["ids"]
        # new connections each, so that both workers answer
        seen = []
        for _ in range(30):
            async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
                seen.append((await client.get("/v1/search", params=query)).json())
        stats = svc.stats()
    finally:
        stop_service(svc)
    assert all(body["results"][0]["id"] == doc_id for body in seen)
    assert stats["cache"]["invalidations"] >= 1
    assert stats["cache"]["hits"]["l1"] + stats["cache"]["hits"]["redis"] > 0


async def test_ttl_expiry_and_l1_size_bound(cache_service_factory: ServiceFactory) -> None:
    svc = cache_service_factory(
        SEARCH_RESULT_TTL_S="1", SEARCH_TTL_JITTER="0", SEARCH_XFETCH_BETA="0", SEARCH_L1_SIZE="4"
    )
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            q = _unique("sourdough oven")
            await client.get("/v1/search", params={"q": q})
            s1 = svc.stats()
            await client.get("/v1/search", params={"q": q})
            s2 = svc.stats()
            await asyncio.sleep(1.2)
            await client.get("/v1/search", params={"q": q})
            s3 = svc.stats()
            # L1 holds 4 results: 10 distinct queries evict at least 6 of them
            qs = [_unique("jazz") for _ in range(10)]
            for text in qs:
                await client.get("/v1/search", params={"q": text})
            s4 = svc.stats()
            await client.get("/v1/search", params={"q": qs[0]})
            s5 = svc.stats()
    finally:
        stop_service(svc)
    assert s2["db_searches"] == s1["db_searches"]  # served from the cache
    assert s2["cache"]["sources"]["l1"] == s1["cache"]["sources"]["l1"] + 1
    assert s3["db_searches"] == s2["db_searches"] + 1  # expired after 1 s
    assert s4["cache"]["evictions"] - s3["cache"]["evictions"] >= 6
    # the oldest entry left L1 but Redis still has it
    assert s5["cache"]["sources"]["redis"] == s4["cache"]["sources"]["redis"] + 1
    assert s5["db_searches"] == s4["db_searches"]


async def test_stampede_at_expiry_recomputes_at_most_a_couple_of_times(
    cache_service_factory: ServiceFactory,
) -> None:
    # 20 clients hammer one key with a 1 s TTL for 3.5 s; each computation takes 100 ms.
    svc = cache_service_factory(
        SEARCH_RESULT_TTL_S="1",
        SEARCH_TTL_JITTER="0",
        SEARCH_DEBUG_DB_DELAY_MS="100",
        SEARCH_XFETCH_BETA="1",
    )
    params: Params = {"q": _unique("solar panels grid"), "k": 10}
    try:
        before = svc.stats()
        deadline = time.monotonic() + 3.5
        statuses: list[int] = []

        async def client_loop(client: httpx.AsyncClient) -> None:
            while time.monotonic() < deadline:
                statuses.append((await client.get("/v1/search", params=params)).status_code)
                await asyncio.sleep(0.01)

        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            await asyncio.gather(*[client_loop(client) for _ in range(20)])
        after = svc.stats()
    finally:
        stop_service(svc)
    searches = after["db_searches"] - before["db_searches"]
    assert set(statuses) == {200}
    assert len(statuses) > 150  # the load was real: far more requests than recomputations
    # one per TTL period: 4 periods in 3.5 s (the first one cold), but XFetch refreshes early
    # by about delta * ln(requests per period) ~ 0.5 s, so a period can shrink to ~0.5-0.6 s
    # (7 searches seen on a clean CI machine). A stampede is ~20 per expiry (one per client).
    assert searches <= 8, searches
    assert after["cache"]["early_refreshes"] >= 1


async def test_valkey_outage_keeps_answering_and_the_cache_returns(
    cache_service_factory: ServiceFactory, cache_valkey_factory: ValkeyFactory
) -> None:
    valkey = cache_valkey_factory(None)
    svc = cache_service_factory(
        redis_url=valkey.url,
        SEARCH_L1_ENABLED="0",
        SEARCH_BREAKER_FAILURES="3",
        SEARCH_BREAKER_COOLDOWN_S="0.3",
    )
    params: Params = {"q": _unique("galaxies"), "k": 5}
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            for _ in range(3):
                assert (await client.get("/v1/search", params=params)).status_code == 200
            assert svc.stats()["cache"]["hits"]["redis"] >= 2
            stack.stop_pid(valkey.pid, "valkey")
            down = [await client.get("/v1/search", params=params) for _ in range(40)]
            during = svc.stats()
            cache_valkey_factory(valkey.settings.redis_port)  # back, empty, same port
            await asyncio.sleep(0.5)  # past the cooldown: the next call probes
            for _ in range(6):
                assert (await client.get("/v1/search", params=params)).status_code == 200
            after = svc.stats()
    finally:
        stop_service(svc)
    assert [r.status_code for r in down] == [200] * 40
    assert during["cache"]["breaker_state"] == "open"
    assert during["cache"]["redis_errors"] >= 3
    assert during["cache"]["redis_skipped"] > 0
    assert after["cache"]["breaker_state"] == "closed"
    assert after["cache"]["hits"]["redis"] > during["cache"]["hits"]["redis"]


async def test_stream_fills_and_then_serves_the_cache(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(SEARCH_STREAM_BATCH_SIZE="4", SEARCH_ADMIN_TOKEN="s3cret")
    q = _unique("bread dough")
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            first = await client.get("/v1/search/stream", params={"q": q, "k": 10})
            s1 = svc.stats()
            second = await client.get("/v1/search/stream", params={"q": q, "k": 10})
            plain = await client.get("/v1/search", params={"q": q, "k": 10})
            s2 = svc.stats()
            # admin invalidation: 401 without token, 403 wrong, 200 right
            no_auth = await client.post("/v1/cache/invalidate")
            wrong = await client.post(
                "/v1/cache/invalidate", headers={"Authorization": "Bearer nope"}
            )
            right = await client.post(
                "/v1/cache/invalidate", headers={"Authorization": "Bearer s3cret"}
            )
            await client.get("/v1/search", params={"q": q, "k": 10})
            s3 = svc.stats()
    finally:
        stop_service(svc)
    assert first.text.count("event: results") == 3  # 10 hits in batches of 4
    assert second.text.count("event: results") == 3
    assert s2["db_searches"] == s1["db_searches"]
    assert plain.json()["results"][0]["id"] == int(first.text.split('"id":', 1)[1].split(",", 1)[0])
    assert (no_auth.status_code, wrong.status_code, right.status_code) == (401, 403, 200)
    assert no_auth.headers["www-authenticate"] == "Bearer"
    assert isinstance(right.json()["generation"], int)
    assert s3["db_searches"] == s2["db_searches"] + 1  # invalidated
    assert s3["cache"]["invalidations"] >= 1


async def test_admin_endpoint_is_hidden_without_a_token(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(SEARCH_CACHE_ENABLED="0")
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as client:
            resp = await client.post("/v1/cache/invalidate", headers={"Authorization": "Bearer x"})
            q: Params = {"q": _unique("jazz"), "k": 3}
            await client.get("/v1/search", params=q)
            await client.get("/v1/search", params=q)
        stats = svc.stats()
    finally:
        stop_service(svc)
    assert resp.status_code == 404
    assert stats["cache"]["enabled"] is False
    assert stats["cache"]["sources"]["bypass"] == 2
    assert stats["db_searches"] == 2
