"""The service's database checks over real HTTP: a corpus embedded by another model."""

from __future__ import annotations

import httpx
import pytest

from service.embed.hash import HashEmbedder
from tests.harness import Servers, ServiceFactory


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
