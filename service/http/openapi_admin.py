"""The OpenAPI paths of the admin and debug routes (bearer token: SEARCH_ADMIN_TOKEN)."""

from __future__ import annotations

from typing import Any

from service.http.openapi_parts import errors, json_content, search_params
from service.settings import Settings


def admin_paths(settings: Settings) -> dict[str, Any]:
    return {
        "/v1/cache/invalidate": {
            "post": {
                "operationId": "invalidateCache",
                "summary": "Admin: bump the corpus generation (needs SEARCH_ADMIN_TOKEN)",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "the new generation",
                        "content": json_content(
                            {
                                "type": "object",
                                "required": ["generation"],
                                "properties": {"generation": {"type": "integer"}},
                            }
                        ),
                    },
                    **errors(401, 403, 404, 503),
                },
            }
        },
        "/v1/admin/explain": {
            "get": {
                "operationId": "explainSearch",
                "summary": "Admin: EXPLAIN (ANALYZE, BUFFERS, SETTINGS) of a search (q, k, topic)",
                "security": [{"bearer": []}],
                "parameters": search_params(settings, 10),
                "responses": {
                    "200": {
                        "description": "the statement, the settings it runs under, its plan",
                        "content": json_content({"$ref": "#/components/schemas/Explain"}),
                    },
                    **errors(400, 401, 403, 404, 409, 422, 503),
                },
            }
        },
        "/v1/debug/tracemalloc/start": {
            "post": {
                "operationId": "tracemallocStart",
                "summary": "Admin: start tracemalloc in this worker and take a baseline",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "tracing",
                        "content": json_content(
                            {
                                "type": "object",
                                "required": ["pid", "tracing", "traced_kb"],
                                "properties": {
                                    "pid": {"type": "integer"},
                                    "tracing": {"type": "boolean"},
                                    "traced_kb": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **errors(401, 403, 404),
                },
            }
        },
        "/v1/debug/tracemalloc/top": {
            "get": {
                "operationId": "tracemallocTop",
                "summary": "Admin: top allocation sites; compare=1 ranks growth since start",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {
                        "name": "compare",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["0", "1", "true", "yes"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "allocation sites of the worker that answered",
                        "content": json_content(
                            {
                                "type": "object",
                                "required": ["pid", "compare", "traced_kb", "sites"],
                                "properties": {
                                    "pid": {"type": "integer"},
                                    "compare": {"type": "boolean"},
                                    "traced_kb": {"type": "integer"},
                                    "peak_kb": {"type": "integer"},
                                    "sites": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        ),
                    },
                    **errors(401, 403, 404, 422),
                },
            }
        },
    }
