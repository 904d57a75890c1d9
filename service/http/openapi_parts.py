"""Building blocks of the OpenAPI document: error responses, parameters, schemas."""

from __future__ import annotations

from typing import Any

from service.http.parsing import BODY_MAX_CHARS, TITLE_MAX_CHARS, TOPIC_MAX_CHARS
from service.settings import Settings

# A string with at least one non-blank character and no NUL (the API refuses both).
TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

ERROR = {
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


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def errors(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in (*codes, 405):
        response: dict[str, Any] = {
            "description": _DESCRIPTIONS[str(code)],
            "content": json_content({"$ref": "#/components/schemas/Error"}),
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


def search_params(settings: Settings, default_k: int) -> list[dict[str, Any]]:
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
                "pattern": TEXT_PATTERN,
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
                "pattern": TEXT_PATTERN,
            },
        },
    ]


def text(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": TEXT_PATTERN}


STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
}

# One Server-Sent Event as schemathesis and OpenAPI 3.2 see it: its fields, data as JSON.
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["results", "done"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


def components(settings: Settings) -> dict[str, Any]:
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": ERROR,
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
                    "query": text(settings.max_query_chars),
                    # null is read as absent (the default k, no filter)
                    "k": {"type": ["integer", "null"], "minimum": 1, "maximum": settings.max_k},
                    "filter": {
                        "type": ["object", "null"],
                        "additionalProperties": False,
                        "properties": {
                            "topic": {"anyOf": [text(TOPIC_MAX_CHARS), {"type": "null"}]}
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
                                "title": text(TITLE_MAX_CHARS),
                                "body": text(BODY_MAX_CHARS),
                                "topic": text(TOPIC_MAX_CHARS),
                            },
                        },
                    }
                },
            },
            "Explain": {
                "type": "object",
                "required": ["index_mode", "k", "settings", "statement", "plan"],
                "properties": {
                    "index_mode": {"type": "string", "enum": ["hnsw", "ivfflat", "exact"]},
                    "k": {"type": "integer", "minimum": 1},
                    "settings": {
                        "type": "object",
                        "description": "setting -> value the statement runs under",
                        "additionalProperties": {"type": "string"},
                    },
                    "statement": {"type": "string"},
                    "plan": {"type": "string"},
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
    }
