"""The service's OpenAPI 3.1 schema, written by hand and served at ``/openapi.json``.

Hand-written rather than derived from the routes so that it states the contract (bounds,
every status a route can answer, the error body) and can be checked against the running
service: ``tests/service/http/test_openapi_schemathesis.py`` fuzzes every operation with it.
"""

from __future__ import annotations

from typing import Any

from service.http.openapi_admin import admin_paths
from service.http.openapi_parts import (
    SSE_EVENT,
    STATUS,
    components,
    errors,
    json_content,
    search_params,
)
from service.settings import Settings


def build_schema(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these settings (limits come from them)."""
    search_ok = {
        "description": "Ranked results",
        "content": json_content({"$ref": "#/components/schemas/SearchResults"}),
    }
    json_body_errors = (400, 409, 413, 415, 422, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "perf-search-ci vector search",
            "version": "1",
            "description": "Semantic search over a document corpus (PostgreSQL + pgvector).",
        },
        "paths": {
            "/v1/search": {
                "get": {
                    "operationId": "searchGet",
                    "summary": "Search with query parameters",
                    "parameters": search_params(settings, 10),
                    "responses": {"200": search_ok, **errors(400, 409, 422, 503)},
                },
                "post": {
                    "operationId": "searchPost",
                    "summary": "Search with a JSON body",
                    "requestBody": {
                        "required": True,
                        "content": json_content({"$ref": "#/components/schemas/SearchRequest"}),
                    },
                    "responses": {"200": search_ok, **errors(*json_body_errors)},
                },
            },
            "/v1/search/stream": {
                "get": {
                    "operationId": "searchStream",
                    "summary": "Search results as Server-Sent Events (results..., done)",
                    "parameters": search_params(settings, 100),
                    "responses": {
                        "200": {
                            "description": (
                                "events `results` (batches), then `done`; the result is "
                                "fetched whole before the first event"
                            ),
                            "content": {"text/event-stream": {"schema": SSE_EVENT}},
                        },
                        **errors(400, 409, 422, 503),
                    },
                }
            },
            "/v1/documents": {
                "post": {
                    "operationId": "addDocuments",
                    "summary": "Embed and insert documents",
                    "requestBody": {
                        "required": True,
                        "content": json_content({"$ref": "#/components/schemas/NewDocuments"}),
                    },
                    "responses": {
                        "201": {
                            "description": "ids of the inserted documents, in order",
                            "content": json_content(
                                {
                                    "type": "object",
                                    "required": ["ids"],
                                    "properties": {
                                        "ids": {"type": "array", "items": {"type": "integer"}}
                                    },
                                }
                            ),
                        },
                        **errors(*json_body_errors),
                    },
                }
            },
            "/v1/documents/{doc_id}": {
                "delete": {
                    "operationId": "deleteDocument",
                    "summary": "Delete one document",
                    "parameters": [
                        {
                            "name": "doc_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                        }
                    ],
                    "responses": {
                        "204": {"description": "deleted"},
                        **errors(404, 422, 503),
                    },
                }
            },
            "/v1/stats": {
                "get": {
                    "operationId": "stats",
                    "summary": "Counters as JSON (aggregated across workers)",
                    "responses": {
                        "200": {
                            "description": "figures",
                            "content": json_content({"$ref": "#/components/schemas/Stats"}),
                        },
                        **errors(),
                    },
                }
            },
            **admin_paths(settings),
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is alive",
                    "responses": {
                        "200": {"description": "alive", "content": json_content(STATUS)},
                        **errors(),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Database reachable, corpus model and index present",
                    "responses": {
                        "200": {"description": "ready", "content": json_content(STATUS)},
                        "503": {"description": "not ready", "content": json_content(STATUS)},
                        **errors(),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition",
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **errors(),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": json_content({"type": "object"}),
                        },
                        **errors(),
                    },
                }
            },
        },
        "components": components(settings),
    }
