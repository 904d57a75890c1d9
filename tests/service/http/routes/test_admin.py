"""Admin routes over real HTTP: ``/v1/admin/explain`` shows the settings the service runs
a search with (hnsw.ef_search, ivfflat.probes, exact's index scans off), and the guard.

The settings are read back from the connection the EXPLAIN ran on, so they are what the
search ran under, whether as connection defaults or as SET LOCAL in its transaction."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ci.seed import SeedResult
from tests.harness import IVFFLAT_LISTS, RunningService, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

TOKEN = "explain-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EF_SEARCH = 57  # neither pgvector's default (40) nor the service's (80)
PROBES = 7


def _explain(svc: RunningService, **params: str | int) -> httpx.Response:
    return httpx.get(f"{svc.url}/v1/admin/explain", params=params, headers=AUTH, timeout=30)


def _ok(svc: RunningService, **params: str | int) -> dict[str, Any]:
    resp = _explain(svc, **params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"index_mode", "k", "settings", "statement", "plan"}
    return body


@pytest.fixture(scope="module")
def hnsw_service(module_service_factory: ServiceFactory, corpus: SeedResult) -> RunningService:
    return module_service_factory(
        SEARCH_INDEX_MODE="hnsw", SEARCH_HNSW_EF_SEARCH=str(EF_SEARCH), SEARCH_ADMIN_TOKEN=TOKEN
    )


def test_explain_shows_the_configured_ef_search_and_the_hnsw_index(
    hnsw_service: RunningService,
) -> None:
    body = _ok(hnsw_service, q="telescopes and stars", k=10)
    assert body["index_mode"] == "hnsw"
    assert body["k"] == 10
    assert body["settings"] == {"hnsw.ef_search": str(EF_SEARCH)}
    assert "ORDER BY (embedding) <=> $1::vector LIMIT $2" in body["statement"]
    assert "Index Scan using documents_hnsw_vector_m16_efc64" in body["plan"]
    assert "Execution Time" in body["plan"]  # ANALYZE ran it
    assert "Buffers:" in body["plan"]


def test_explain_raises_ef_search_to_a_larger_k_and_filters_by_topic(
    hnsw_service: RunningService,
) -> None:
    # the service searches with ef_search = max(SEARCH_HNSW_EF_SEARCH, k)
    body = _ok(hnsw_service, q="telescopes", k=200)
    assert body["settings"] == {"hnsw.ef_search": "200"}
    topic = _ok(hnsw_service, q="telescopes", k=5, topic="astronomy")
    assert topic["settings"] == {
        "hnsw.ef_search": str(EF_SEARCH),
        "hnsw.iterative_scan": "strict_order",
    }
    assert "WHERE topic = $3" in topic["statement"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "3"}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x", "k": "0"}, "k"),
        ({"q": "x", "k": "ten"}, "k"),
        ({"q": "x", "topic": ""}, "topic"),
    ],
)
def test_bad_explain_parameters_are_a_422_naming_the_field(
    hnsw_service: RunningService, params: dict[str, str], field: str
) -> None:
    resp = _explain(hnsw_service, **params)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


def test_explain_is_admin_only(
    hnsw_service: RunningService, search_service: RunningService
) -> None:
    url = f"{hnsw_service.url}/v1/admin/explain"
    assert httpx.get(url, params={"q": "x"}, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(url, params={"q": "x"}, headers=wrong, timeout=10).status_code == 403
    # without SEARCH_ADMIN_TOKEN the route does not exist
    hidden = httpx.get(f"{search_service.url}/v1/admin/explain", params={"q": "x"}, timeout=10)
    assert hidden.status_code == 404


def test_explain_shows_the_configured_ivfflat_probes(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(
        SEARCH_INDEX_MODE="ivfflat",
        SEARCH_IVFFLAT_LISTS=str(IVFFLAT_LISTS),
        SEARCH_IVFFLAT_PROBES=str(PROBES),
        SEARCH_ADMIN_TOKEN=TOKEN,
    )
    body = _ok(svc, q="sourdough bread", k=10)
    assert body["index_mode"] == "ivfflat"
    assert body["settings"] == {"ivfflat.probes": str(PROBES)}
    assert f"documents_ivfflat_norm_vector_l{IVFFLAT_LISTS}" in body["plan"]


def test_explain_in_exact_mode_shows_index_scans_off(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(SEARCH_INDEX_MODE="exact", SEARCH_ADMIN_TOKEN=TOKEN)
    body = _ok(svc, q="sourdough bread", k=10)
    assert body["index_mode"] == "exact"
    assert body["settings"] == {"enable_indexscan": "off", "enable_bitmapscan": "off"}
    assert "enable_indexscan = 'off'" in body["plan"]
    assert "Index Scan" not in body["plan"]
