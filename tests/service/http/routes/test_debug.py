"""Debug and GC surfaces of the service: tracemalloc admin routes, the leak knob, GC stats."""

from __future__ import annotations

import httpx
import pytest

from ci.seed import SeedResult
from tests.harness import RunningService, ServiceFactory

TOKEN = "debug-test-token"


@pytest.mark.stack
@pytest.mark.timeout(90)
def test_tracemalloc_routes_are_admin_only_and_report_growth(
    service_factory: ServiceFactory, corpus: SeedResult
) -> None:
    svc = service_factory(
        SEARCH_ADMIN_TOKEN=TOKEN,
        SEARCH_DEBUG_LEAK_RESPONSES="true",
        SEARCH_CACHE_ENABLED="false",
        SEARCH_GC_THRESHOLDS="5000,20,20",
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=svc.url, timeout=30) as c:
        assert c.post("/v1/debug/tracemalloc/start").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/v1/debug/tracemalloc/start", headers=wrong).status_code == 403
        assert c.get("/v1/debug/tracemalloc/top", headers=auth).status_code == 422  # not tracing
        assert c.post("/v1/debug/tracemalloc/start", headers=auth).status_code == 200
        for i in range(300):  # every body is kept: the leak must top the growth
            c.get("/v1/search", params={"q": f"sourdough fermentation {i}", "k": 100})
        r = c.get("/v1/debug/tracemalloc/top", params={"compare": "1", "limit": "5"}, headers=auth)
        assert r.status_code == 200
        top = r.json()
        assert top["compare"] is True
        assert sum(s["size_diff_kb"] for s in top["sites"]) > 1000  # ~300 x 10 KB kept
        bad = c.get("/v1/debug/tracemalloc/top", params={"limit": "0"}, headers=auth)
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "limit"
        gc_stats = c.get("/v1/stats").json()["gc"]
    assert gc_stats["thresholds"] == [5000, 20, 20]
    assert gc_stats["frozen_objects"] > 10_000  # gc.freeze() after start-up
    assert sum(p["collections"] for p in gc_stats["pauses"].values()) > 0


@pytest.mark.stack
@pytest.mark.timeout(60)
def test_debug_routes_are_hidden_without_an_admin_token(search_service: RunningService) -> None:
    url = search_service.url
    assert httpx.post(f"{url}/v1/debug/tracemalloc/start", timeout=10).status_code == 404
    assert httpx.get(f"{url}/v1/debug/tracemalloc/top", timeout=10).status_code == 404
