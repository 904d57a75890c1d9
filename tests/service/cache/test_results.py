"""Precise invalidation over real HTTP, PostgreSQL and Valkey: a write drops only the
cached results it changes, and a search after a write never sees a result it changed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from service.embed.hash import hash_embed
from tests.service.conftest import CacheService, ServiceFactory, stop_service

pytestmark = [pytest.mark.stack, pytest.mark.timeout(90)]

Params = dict[str, str | int]


def _doc(title: str, body: str, topic: str) -> dict[str, str]:
    return {"title": title, "body": body, "topic": topic}


class Client:
    """A service under test, with the counters each step asserts on."""

    def __init__(self, svc: CacheService, http: httpx.AsyncClient) -> None:
        self.svc = svc
        self.http = http

    async def search(self, params: Params) -> list[dict[str, Any]]:
        resp = await self.http.get("/v1/search", params=params)
        assert resp.status_code == 200, resp.text
        hits: list[dict[str, Any]] = resp.json()["results"]
        return hits

    async def insert(self, *docs: dict[str, str]) -> list[int]:
        resp = await self.http.post("/v1/documents", json={"documents": list(docs)})
        assert resp.status_code == 201, resp.text
        ids: list[int] = resp.json()["ids"]
        return ids

    async def delete(self, doc_id: int) -> None:
        assert (await self.http.delete(f"/v1/documents/{doc_id}")).status_code == 204

    def counters(self) -> tuple[int, dict[str, float]]:
        stats = self.svc.stats()
        return int(stats["db_searches"]), stats["cache"]["validations"]


def _similarity(a: str, b: str) -> float:
    va, vb = hash_embed([a, b])
    return float(np.dot(va, vb))


async def test_writes_drop_only_the_cached_results_they_change(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(SEARCH_XFETCH_BETA="0", SEARCH_ADMIN_TOKEN="s3cret")
    word = uuid.uuid4().hex[:10]
    topic, other_topic = f"test/precise-{word}", f"test/other-{word}"
    text = f"zephyr quillwort {word}"
    query: Params = {"q": text, "k": 3}
    filtered: Params = {"q": text, "k": 3, "topic": topic}
    near = _doc(text, text, topic)
    far = _doc(f"marmalade cobblestone {word[::-1]}", "velvet anchors", topic)
    far_text = f"{far['title']}. {far['body']}"
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
            c = Client(svc, http)
            # three documents close to the query make its top 3, far ahead of the corpus
            base = await c.insert(
                *[_doc(f"{text} {n}", f"{text} notes {n}", topic) for n in ("one", "two", "six")]
            )
            assert {h["id"] for h in await c.search(query)} == set(base)
            assert {h["id"] for h in await c.search(filtered)} == set(base)
            worst = min(h["score"] for h in await c.search(query))
            assert _similarity(text, far_text) < worst - 0.1  # the far insert cannot rank
            db0, v0 = c.counters()

            # an insert far from the query: both entries kept, no DB search
            (far_id,) = await c.insert(far)
            assert {h["id"] for h in await c.search(query)} == set(base)
            assert {h["id"] for h in await c.search(filtered)} == set(base)
            db1, v1 = c.counters()
            assert db1 == db0
            assert v1["kept"] == v0["kept"] + 2
            assert v1["dropped"] == v0["dropped"]

            # deleting a document in no cached result: kept
            await c.delete(far_id)
            await c.search(query)
            await c.search(filtered)
            db2, v2 = c.counters()
            assert (db2, v2["kept"], v2["dropped"]) == (db1, v1["kept"] + 2, v1["dropped"])

            # a near insert on another topic: the unfiltered result changes (read your
            # write), the filtered one does not
            (near_other,) = await c.insert({**near, "topic": other_topic})
            assert (await c.search(query))[0]["id"] == near_other
            assert {h["id"] for h in await c.search(filtered)} == set(base)
            db3, v3 = c.counters()
            assert db3 == db2 + 1
            # a dropped L1 entry sends the lookup to Redis, whose copy is checked (and
            # dropped) too: each check counts
            assert (v3["insert"], v3["kept"]) == (v2["insert"] + 2, v2["kept"] + 1)

            # deleting a document of a cached result drops it; the other one is kept
            await c.delete(near_other)
            assert near_other not in {h["id"] for h in await c.search(query)}
            assert {h["id"] for h in await c.search(filtered)} == set(base)
            db4, v4 = c.counters()
            assert db4 == db3 + 1
            assert (v4["delete"], v4["kept"]) == (v3["delete"] + 2, v3["kept"] + 1)

            # a near insert on the filter's topic reaches the filtered result at once
            (near_same,) = await c.insert(near)
            assert (await c.search(filtered))[0]["id"] == near_same
            assert (await c.search(query))[0]["id"] == near_same
            db5, v5 = c.counters()
            assert (db5, v5["insert"]) == (db4 + 2, v4["insert"] + 4)

            # the admin invalidation is a reset: nothing survives it
            auth = {"Authorization": "Bearer s3cret"}
            assert (await http.post("/v1/cache/invalidate", headers=auth)).status_code == 200
            await c.search(query)
            db6, v6 = c.counters()
            assert (db6, v6["reset"]) == (db5 + 1, v5["reset"] + 1)  # L1 emptied by the reset
            stats = svc.stats()["cache"]
    finally:
        stop_service(svc)
    assert stats["validate"] is True
    assert stats["invalidations"] >= 6


async def test_a_log_trimmed_past_an_entry_is_a_miss(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(SEARCH_XFETCH_BETA="0", SEARCH_CACHE_LOG_SIZE="2")
    word = uuid.uuid4().hex[:10]
    query: Params = {"q": f"zephyr quillwort {word}", "k": 3}
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
            c = Client(svc, http)
            await c.search(query)
            db0, v0 = c.counters()
            # three far documents in one write: three records, the log keeps two
            await c.insert(
                *[_doc(f"marmalade {word} {n}", "velvet", "test/trim") for n in ("a", "b", "c")]
            )
            await c.search(query)
            db1, v1 = c.counters()
    finally:
        stop_service(svc)
    assert (db1, v1["gap"], v1["kept"]) == (db0 + 1, v0["gap"] + 2, v0["kept"])


async def test_validation_off_is_the_old_invalidate_everything(
    cache_service_factory: ServiceFactory,
) -> None:
    svc = cache_service_factory(SEARCH_XFETCH_BETA="0", SEARCH_CACHE_VALIDATE="0")
    word = uuid.uuid4().hex[:10]
    query: Params = {"q": f"zephyr quillwort {word}", "k": 3}
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
            c = Client(svc, http)
            await c.search(query)
            await c.search(query)
            db0, _ = c.counters()
            await c.insert(_doc(f"marmalade cobblestone {word}", "velvet", "test/off"))
            await c.search(query)
            db1, v1 = c.counters()
            stats = svc.stats()["cache"]
    finally:
        stop_service(svc)
    assert db1 == db0 + 1
    assert v1 == {"kept": 0, "dropped": 0, "insert": 0, "delete": 0, "reset": 0, "gap": 0}
    assert stats["validate"] is False


async def test_a_write_on_one_instance_is_never_missed_by_a_search_on_another_at_once(
    cache_service_factory: ServiceFactory,
) -> None:
    """Two app instances (two processes, one database, one Valkey), both caches warm
    with a query's result: an insert on one that becomes the query's top hit, then at
    once the same query on the other, which must serve the new result, not its L1's or
    Redis's older copy; then a delete of that document, the same way."""
    writer = cache_service_factory(SEARCH_XFETCH_BETA="0")
    reader = cache_service_factory(SEARCH_XFETCH_BETA="0")
    try:
        async with (
            httpx.AsyncClient(base_url=writer.url, timeout=10) as w_http,
            httpx.AsyncClient(base_url=reader.url, timeout=10) as r_http,
        ):
            w, r = Client(writer, w_http), Client(reader, r_http)
            for round_ in range(10):
                text = f"heliotrope cartography {uuid.uuid4().hex[:10]} {round_}"
                query: Params = {"q": text, "k": 5}
                before = await r.search(query)
                await w.search(query)
                assert await r.search(query) == before  # the reader's L1 holds it
                await asyncio.sleep(0.02)  # and Redis too (written behind the answers)
                (doc_id,) = await w.insert(_doc(text, text, "test/cross-instance"))
                after = await r.search(query)
                assert after[0]["id"] == doc_id, (round_, after)
                await w.delete(doc_id)
                assert doc_id not in {h["id"] for h in await r.search(query)}, round_
            stats = reader.stats()
    finally:
        stop_service(writer)
        stop_service(reader)
    assert stats["cache"]["hits"]["l1"] >= 10
