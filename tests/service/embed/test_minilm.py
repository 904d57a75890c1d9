"""MiniLM: paraphrases rank above unrelated text; the model loads lazily and only once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.embed.minilm import MiniLMEmbedder
from service.model import DIM
from tests.harness import Servers, ServiceFactory


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
