"""The search API over real HTTP against a real PostgreSQL + pgvector."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.harness import RunningService

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]


@pytest.fixture
def client(search_service: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=search_service.url, timeout=10) as c:
        yield c


def test_get_search_returns_k_ranked_results(client: httpx.Client) -> None:
    resp = client.get(
        "/v1/search", params={"q": "telescopes observatory astronomer galaxies", "k": 7}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["results"]) == 7
    assert set(body["results"][0]) == {"id", "title", "score", "topic"}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["took_ms"] > 0
    # relevance against the exact scan is measured by tests/service/db/test_contract.py


def test_post_search_with_topic_filter(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search",
        json={"query": "bread dough oven", "k": 15, "filter": {"topic": "cooking/sourdough bread"}},
    )
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert len(results) == 15
    assert {r["topic"] for r in results} == {"cooking/sourdough bread"}


@pytest.mark.parametrize("k", [1, 1000])
def test_k_bounds_are_inclusive(client: httpx.Client, k: int) -> None:
    resp = client.get("/v1/search", params={"q": "jazz improvisation", "k": k})
    assert resp.status_code == 200
    assert len(resp.json()["results"]) == k


def test_get_and_post_agree(client: httpx.Client) -> None:
    a = client.get("/v1/search", params={"q": "solar panels power grid", "k": 5}).json()
    b = client.post("/v1/search", json={"query": "solar panels power grid", "k": 5}).json()
    assert [r["id"] for r in a["results"]] == [r["id"] for r in b["results"]]


def test_document_is_found_after_insert_and_gone_after_delete(client: httpx.Client) -> None:
    doc = {
        "title": "Comets seen through a backyard telescope",
        "topic": "test/ingest",
        "body": "Comets, orbit and light: an astronomer's night at the observatory.",
    }
    query = f"{doc['title']}. {doc['body']}"  # embeds to the document's own vector
    resp = client.post("/v1/documents", json={"documents": [doc]})
    assert resp.status_code == 201
    (doc_id,) = resp.json()["ids"]
    hits = client.get("/v1/search", params={"q": query, "k": 3}).json()
    assert hits["results"][0]["id"] == doc_id
    assert hits["results"][0]["score"] > 0.99
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 204
    hits = client.get("/v1/search", params={"q": query, "k": 3}).json()
    assert doc_id not in [r["id"] for r in hits["results"]]
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 404


BAD_GETS = [
    ({}, "q"),
    ({"q": ""}, "q"),
    ({"q": "   "}, "q"),
    ({"q": "x" * 2001}, "q"),
    ({"q": "ok", "k": 0}, "k"),
    ({"q": "ok", "k": 1001}, "k"),
    ({"q": "ok", "k": -5}, "k"),
    ({"q": "ok", "k": 10**9}, "k"),
    ({"q": "ok", "k": "ten"}, "k"),
    ({"q": "ok", "k": "1.5"}, "k"),
]


@pytest.mark.parametrize(("params", "field"), BAD_GETS)
def test_bad_get_input_is_a_422_naming_the_field(
    client: httpx.Client, params: dict[str, object], field: str
) -> None:
    resp = client.get("/v1/search", params=params)  # type: ignore[arg-type]  # httpx accepts it
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


BAD_BODIES = [
    ({"query": "", "k": 5}, "query", 422),
    ({"query": "ok", "k": 0}, "k", 422),
    ({"query": "ok", "k": True}, "k", 422),
    ({"query": "ok", "k": 2.5}, "k", 422),
    ({"query": 5}, "query", 422),
    ({"k": 5}, "query", 422),
    ({"query": "ok", "filter": {"colour": "red"}}, "filter.colour", 422),
    ({"query": "ok", "filter": "topic"}, "filter", 422),
    ({"query": "ok", "limit": 5}, "limit", 422),
    ([1, 2], "body", 422),
]


@pytest.mark.parametrize(("body", "field", "status"), BAD_BODIES)
def test_bad_post_body(client: httpx.Client, body: object, field: str, status: int) -> None:
    resp = client.post("/v1/search", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["field"] == field


def test_malformed_json_is_400(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search", content=b'{"query": "x",', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == "body"


def test_invalid_utf8_is_400(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search", content=b'{"query": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400


def test_wrong_content_type_is_415(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search",
        content=b"query=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 415
    assert resp.json()["error"]["field"] == "content-type"


def test_huge_body_is_413(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search",
        content=b"[" + b"1," * 600_000 + b"1]",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413


def test_deeply_nested_json_is_a_4xx(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/search",
        content=b"[" * 5000 + b"]" * 5000,
        headers={"content-type": "application/json"},
    )
    assert resp.status_code in (400, 422)


@pytest.mark.parametrize(
    ("docs", "field"),
    [
        ({"documents": []}, "documents"),
        ({"documents": [{"title": "t", "body": "b"}]}, "documents[0].topic"),
        (
            {"documents": [{"title": "t", "body": "b", "topic": "x", "extra": 1}]},
            "documents[0].extra",
        ),
        ({"docs": []}, "docs"),
    ],
)
def test_bad_documents(client: httpx.Client, docs: object, field: str) -> None:
    resp = client.post("/v1/documents", json=docs)
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == field


def test_bad_document_id(client: httpx.Client) -> None:
    resp = client.delete("/v1/documents/abc")
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "id"


def test_unknown_route_and_method_are_json_4xx(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    resp = client.put("/v1/search")
    assert resp.status_code == 405
    assert "error" in resp.json()


def test_health_ready_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert "documents_hnsw" in ready.json()["reason"]
    client.get("/v1/search", params={"q": "metrics check", "k": 2})
    text = client.get("/metrics").text
    for name in (
        'search_http_requests_total{method="GET",route="/v1/search",status="200"}',
        "search_http_request_duration_seconds_bucket",
        "search_db_pool_size",
        "search_db_pool_in_use",
        "search_db_pool_acquire_wait_seconds_count",
        "search_embed_calls_total",
        "search_embed_duration_seconds_count",
    ):
        assert name in text, name
