"""The service's OpenAPI 3.1 schema, written by hand and served at ``/openapi.json``.

Hand-written rather than derived from the routes so that it states the contract (bounds,
every status a route can answer, the error body) and can be checked against the running
service: ``tests/service/test_schemathesis.py`` fuzzes every operation with it.
"""

from __future__ import annotations

from typing import Any

from service.api import BODY_MAX_CHARS, TITLE_MAX_CHARS, TOPIC_MAX_CHARS
from service.settings import Settings

# A string with at least one non-blank character and no NUL (the API refuses both).
_TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "field": {"type": "string", "description": "the offending input"},
                "message": {"type": "string"},
            },
        }
    },
}

_DESCRIPTIONS = {
    "400": "Malformed JSON, or invalid UTF-8 in the body or query string",
    "401": "No bearer token",
    "403": "Wrong bearer token",
    "404": "Not found",
    "405": "Method not allowed on this path",
    "409": "The corpus was embedded by another model than the configured one",
    "413": "Body larger than the limit",
    "415": "Content type is not application/json",
    "422": "A field is invalid; error.field names it",
    "503": "Overloaded (load shedding), pool exhausted, or a dependency down: retry later",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in (*codes, 405):
        response: dict[str, Any] = {
            "description": _DESCRIPTIONS[str(code)],
            "content": _json({"$ref": "#/components/schemas/Error"}),
        }
        if code == 503:
            response["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        if code == 401:
            response["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        out[str(code)] = response
    return out


def _search_params(settings: Settings, default_k: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "q",
            "in": "query",
            "required": True,
            "description": "query text",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": settings.max_query_chars,
                "pattern": _TEXT_PATTERN,
            },
        },
        {
            "name": "k",
            "in": "query",
            "required": False,
            "description": "number of results",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_k,
                "default": default_k,
            },
        },
        {
            "name": "topic",
            "in": "query",
            "required": False,
            "description": "only documents of this topic",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": TOPIC_MAX_CHARS,
                "pattern": _TEXT_PATTERN,
            },
        },
    ]


def _text(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": _TEXT_PATTERN}


def build_schema(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these settings (limits come from them)."""
    search_ok = {
        "description": "Ranked results",
        "content": _json({"$ref": "#/components/schemas/SearchResults"}),
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
                    "parameters": _search_params(settings, 10),
                    "responses": {"200": search_ok, **_errors(400, 409, 422, 503)},
                },
                "post": {
                    "operationId": "searchPost",
                    "summary": "Search with a JSON body",
                    "requestBody": {
                        "required": True,
                        "content": _json({"$ref": "#/components/schemas/SearchRequest"}),
                    },
                    "responses": {"200": search_ok, **_errors(*json_body_errors)},
                },
            },
            "/v1/search/stream": {
                "get": {
                    "operationId": "searchStream",
                    "summary": "Search results as Server-Sent Events (results..., done)",
                    "parameters": _search_params(settings, 100),
                    "responses": {
                        "200": {
                            "description": "events `results` (batches), then `done` or `error`",
                            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
                        },
                        **_errors(400, 409, 422, 503),
                    },
                }
            },
            "/v1/documents": {
                "post": {
                    "operationId": "addDocuments",
                    "summary": "Embed and insert documents",
                    "requestBody": {
                        "required": True,
                        "content": _json({"$ref": "#/components/schemas/NewDocuments"}),
                    },
                    "responses": {
                        "201": {
                            "description": "ids of the inserted documents, in order",
                            "content": _json(
                                {
                                    "type": "object",
                                    "required": ["ids"],
                                    "properties": {
                                        "ids": {"type": "array", "items": {"type": "integer"}}
                                    },
                                }
                            ),
                        },
                        **_errors(*json_body_errors),
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
                        **_errors(404, 422, 503),
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
                            "content": _json({"$ref": "#/components/schemas/Stats"}),
                        },
                        **_errors(),
                    },
                }
            },
            "/v1/cache/invalidate": {
                "post": {
                    "operationId": "invalidateCache",
                    "summary": "Admin: bump the corpus generation (needs SEARCH_ADMIN_TOKEN)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "the new generation",
                            "content": _json(
                                {
                                    "type": "object",
                                    "required": ["generation"],
                                    "properties": {"generation": {"type": "integer"}},
                                }
                            ),
                        },
                        **_errors(401, 403, 404, 503),
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
                            "content": _json(
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
                        **_errors(401, 403, 404),
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
                            "content": _json(
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
                        **_errors(401, 403, 404, 422),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is alive",
                    "responses": {
                        "200": {"description": "alive", "content": _json(_STATUS)},
                        **_errors(),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Database reachable, corpus model and index present",
                    "responses": {
                        "200": {"description": "ready", "content": _json(_STATUS)},
                        "503": {"description": "not ready", "content": _json(_STATUS)},
                        **_errors(),
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
                        **_errors(),
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
                            "content": _json({"type": "object"}),
                        },
                        **_errors(),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Hit": {
                    "type": "object",
                    "required": ["id", "title", "score", "topic"],
                    "properties": {
                        "id": {"type": "integer"},
                        "title": {"type": "string"},
                        "score": {"type": "number"},
                        "topic": {"type": "string"},
                    },
                },
                "SearchResults": {
                    "type": "object",
                    "required": ["results", "took_ms"],
                    "properties": {
                        "results": {
                            "type": "array",
                            "maxItems": settings.max_k,
                            "items": {"$ref": "#/components/schemas/Hit"},
                        },
                        "took_ms": {"type": "number", "minimum": 0},
                    },
                },
                "SearchRequest": {
                    "type": "object",
                    "required": ["query"],
                    "additionalProperties": False,
                    "properties": {
                        "query": _text(settings.max_query_chars),
                        # null is read as absent (the default k, no filter)
                        "k": {"type": ["integer", "null"], "minimum": 1, "maximum": settings.max_k},
                        "filter": {
                            "type": ["object", "null"],
                            "additionalProperties": False,
                            "properties": {
                                "topic": {"anyOf": [_text(TOPIC_MAX_CHARS), {"type": "null"}]}
                            },
                        },
                    },
                },
                "NewDocuments": {
                    "type": "object",
                    "required": ["documents"],
                    "additionalProperties": False,
                    "properties": {
                        "documents": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": settings.max_documents_per_request,
                            "items": {
                                "type": "object",
                                "required": ["title", "body", "topic"],
                                "additionalProperties": False,
                                "properties": {
                                    "title": _text(TITLE_MAX_CHARS),
                                    "body": _text(BODY_MAX_CHARS),
                                    "topic": _text(TOPIC_MAX_CHARS),
                                },
                            },
                        }
                    },
                },
                "Stats": {
                    "type": "object",
                    "required": ["requests", "db_searches", "index_mode", "cache", "metrics"],
                    "properties": {
                        "requests": {"type": "number"},
                        "db_searches": {"type": "number"},
                        "shed": {"type": "number"},
                        "index_mode": {"type": "string"},
                        "cache": {"type": "object"},
                        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
                    },
                },
            },
        },
    }


_STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
}

# One Server-Sent Event as schemathesis and OpenAPI 3.2 see it: its fields, data as JSON.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["results", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
