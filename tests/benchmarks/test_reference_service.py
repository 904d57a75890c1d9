"""The straightforward reference service answers like the service, from the same index."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ci.seed import SeedResult
from tests.harness import RunningService, Servers

pytestmark = [pytest.mark.stack]

REFERENCE_APP = "benchmarks.reference_service:create_app"
QUERIES = [
    {"q": "how does sourdough fermentation work", "k": 10},
    {"q": "statute for copyright", "k": 100},  # k above ef_search (80): SET LOCAL in both
    {"q": "yoga for beginners", "k": 20, "topic": "sports/yoga"},  # iterative scan
    {"q": "  Olympic   GAMES history ", "k": 5},  # normalised like the service's cache keys
]


@pytest.fixture(scope="module")
def reference(servers: Servers, corpus: SeedResult) -> Iterator[httpx.Client]:
    del corpus  # seeded: the same documents and HNSW index the service searches
    comp = servers.server_set.start_service(
        servers.run_dir / "reference",
        service_env={"SEARCH_INDEX_MODE": "hnsw"},
        app=REFERENCE_APP,
    )
    try:
        with httpx.Client(base_url=comp.url, timeout=30) as client:
            yield client
    finally:
        servers.server_set.stop_service(comp)


@pytest.mark.parametrize("params", QUERIES)
def test_same_results_as_the_service(
    reference: httpx.Client, search_service: RunningService, params: dict[str, object]
) -> None:
    ref = reference.get("/v1/search", params=params)  # type: ignore[arg-type]  # httpx takes it
    ours = httpx.get(f"{search_service.url}/v1/search", params=params, timeout=30)  # type: ignore[arg-type]  # same
    assert ref.status_code == ours.status_code == 200
    ref_hits, our_hits = ref.json()["results"], ours.json()["results"]
    assert len(ref_hits) == params["k"]
    assert [h["id"] for h in ref_hits] == [h["id"] for h in our_hits]
    assert [h["score"] for h in ref_hits] == pytest.approx([h["score"] for h in our_hits], abs=1e-6)
    assert set(ref.json()) == {"results", "took_ms"}
    if "topic" in params:
        assert {h["topic"] for h in ref_hits} == {params["topic"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": " "}, "q"), ({"q": "x" * 2001}, "q"), ({"q": "a", "k": "ten"}, "k"),
     ({"q": "a", "k": 0}, "k"), ({"q": "a", "k": 1001}, "k")],
)  # fmt: skip
def test_bad_input_is_a_422_naming_the_field(
    reference: httpx.Client, params: dict[str, object], field: str
) -> None:
    resp = reference.get("/v1/search", params=params)  # type: ignore[arg-type]  # httpx takes it
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == field


def test_health_and_readiness(reference: httpx.Client) -> None:
    assert reference.get("/healthz").json() == {"status": "ok"}
    ready = reference.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["reason"].endswith(" documents")
