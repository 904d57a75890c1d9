"""Every route the service serves, one module per group; :data:`ROUTES` is the table."""

from __future__ import annotations

from starlette.routing import Route

from service.http.routes import admin, debug, documents, health, search, stats

ROUTES = [
    # One route for both methods: two routes on a path make a 405's Allow list only one.
    Route("/v1/search", search.search, methods=["GET", "POST"]),
    Route("/v1/search/stream", search.search_stream, methods=["GET"]),
    Route("/v1/documents", documents.documents_post, methods=["POST"]),
    Route("/v1/documents/{doc_id}", documents.documents_delete, methods=["DELETE"]),
    Route("/v1/stats", stats.stats, methods=["GET"]),
    Route("/v1/cache/invalidate", admin.cache_invalidate, methods=["POST"]),
    Route("/v1/admin/explain", admin.explain, methods=["GET"]),
    Route("/v1/debug/tracemalloc/start", debug.tracemalloc_start, methods=["POST"]),
    Route("/v1/debug/tracemalloc/top", debug.tracemalloc_top, methods=["GET"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", health.metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", health.openapi_schema, methods=["GET"]),
]
KNOWN_PATHS = frozenset(r.path for r in ROUTES)
