"""Embedders: MiniLM quality and lazy single loading; the hash embedder's determinism."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from service.embed import DIM, HashEmbedder, MiniLMEmbedder, hash_embed
from tests.harness import Servers, ServiceFactory


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a = hash_embed(["telescope lens and stars", "bread flour"])
    b = hash_embed(["telescope lens and stars", "bread flour"])
    assert a.shape == (2, DIM)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_hash_embedder_clusters_shared_vocabulary() -> None:
    v = hash_embed(
        ["telescope observatory star orbit", "star orbit telescope", "flour dough oven butter"]
    )
    assert v[0] @ v[1] > 0.5 > abs(float(v[0] @ v[2]))


def test_minilm_ranks_paraphrases_above_unrelated_sentences() -> None:
    model = MiniLMEmbedder(threads=2)
    pairs = [
        (
            "How do I bake sourdough bread at home?",
            "Tips for making a sourdough loaf in my kitchen",
            "The central bank raised interest rates again",
        ),
        (
            "My laptop battery drains very quickly",
            "The notebook's battery runs out fast",
            "Roman legions crossed the river at dawn",
        ),
        (
            "What is the best way to learn the piano?",
            "How can I get good at playing piano?",
            "Tomato plants need plenty of sunlight",
        ),
    ]
    for anchor, para, other in pairs:
        v = model.embed_sync([anchor, para, other])
        assert v[0] @ v[1] > v[0] @ v[2] + 0.3, (anchor, float(v[0] @ v[1]), float(v[0] @ v[2]))


@pytest.mark.timeout(60)
async def test_minilm_loads_once_under_concurrent_first_calls() -> None:
    model = MiniLMEmbedder()
    assert not model.loaded
    results = await asyncio.gather(*(model.embed([f"query {i}"]) for i in range(50)))
    assert model.load_count == 1
    assert all(r.shape == (1, DIM) for r in results)


@pytest.mark.stack
@pytest.mark.timeout(120)
async def test_minilm_service_is_lazy_and_loads_once(
    service_factory: ServiceFactory, servers: Servers
) -> None:
    import asyncpg

    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute("DROP DATABASE IF EXISTS minilm_lazy")
        await conn.execute("CREATE DATABASE minilm_lazy")
    finally:
        await conn.close()
    url = servers.database_url.rsplit("/", 1)[0] + "/minilm_lazy"
    svc = service_factory(database_url=url, SEARCH_EMBEDDER="minilm")
    async with httpx.AsyncClient(base_url=svc.url, timeout=60) as client:
        stats = (await client.get("/v1/stats")).json()
        assert stats["embedder"]["loaded"] is False
        responses = await asyncio.gather(
            *(client.get("/v1/search", params={"q": f"first query {i}", "k": 3}) for i in range(50))
        )
        assert [r.status_code for r in responses] == [200] * 50
        stats = (await client.get("/v1/stats")).json()
    assert stats["embedder"]["loaded"] is True
    assert stats["embedder"]["loads"] == 1


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_service_refuses_a_corpus_of_another_model(
    service_factory: ServiceFactory, servers: Servers, corpus: object
) -> None:
    svc = service_factory(SEARCH_EMBEDDER="minilm", SEARCH_CREATE_INDEX_ON_START="false")
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as client:
        resp = await client.get("/v1/search", params={"q": "telescopes", "k": 3})
        assert resp.status_code == 409
        assert f"was embedded by '{HashEmbedder.model_id}'" in resp.json()["error"]["message"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "re-seed" in ready.json()["reason"]
