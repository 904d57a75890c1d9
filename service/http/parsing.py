"""Request parsing and validation: bad input becomes a BadRequest naming the field.

Everything the routes accept is turned into the frozen types of :mod:`service.model`
here, so the rest of the service never sees raw client input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.requests import Request

from service.errors import BadRequest
from service.model import NewDocument, SearchQuery
from service.settings import Settings

TOPIC_MAX_CHARS = 200
TITLE_MAX_CHARS = 500
BODY_MAX_CHARS = 20_000


def _query_text(value: object, field: str, settings: Settings) -> str:
    if not isinstance(value, str):
        raise BadRequest(field, "must be a string")
    if not value.strip():
        raise BadRequest(field, "must not be empty or blank")
    if len(value) > settings.max_query_chars:
        raise BadRequest(field, f"must be at most {settings.max_query_chars} characters")
    if "\x00" in value:
        raise BadRequest(field, "must not contain NUL characters")
    return value


def _k(value: object, settings: Settings, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise BadRequest("k", f"must be an integer between 1 and {settings.max_k}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("k", f"must be an integer between 1 and {settings.max_k}")
    if not 1 <= value <= settings.max_k:
        raise BadRequest("k", f"must be between 1 and {settings.max_k}, got {value}")
    return value


def _topic(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field, "must be a non-empty string")
    if len(value) > TOPIC_MAX_CHARS or "\x00" in value:
        raise BadRequest(field, f"must be at most {TOPIC_MAX_CHARS} characters, without NUL")
    return value


def check_query_string(raw: bytes) -> None:
    """Refuse a query string that is not UTF-8 once percent-decoded.

    Starlette decodes it with replacement characters, which would turn bad bytes into a
    search for U+FFFD instead of telling the client.
    """
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("query string", "is not valid UTF-8", status_code=400) from exc


def parse_search_params(
    params: Mapping[str, str], settings: Settings, default_k: int
) -> SearchQuery:
    """``GET /v1/search?q=...&k=...&topic=...``."""
    if "q" not in params:
        raise BadRequest("q", "is required")
    text = _query_text(params["q"], "q", settings)
    return SearchQuery(
        text, _k(params.get("k"), settings, default_k), _topic(params.get("topic"), "topic")
    )


def parse_search_body(body: object, settings: Settings) -> SearchQuery:
    """``POST /v1/search`` with ``{"query": ..., "k": ..., "filter": {"topic": ...}}``."""
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    unknown = sorted(set(body) - {"query", "k", "filter"})
    if unknown:
        raise BadRequest(unknown[0], "is not a known field (expected query, k, filter)")
    if "query" not in body:
        raise BadRequest("query", "is required")
    text = _query_text(body["query"], "query", settings)
    k = _k(body.get("k"), settings, 10)
    topic = None
    flt = body.get("filter")
    if flt is not None:
        if not isinstance(flt, dict):
            raise BadRequest("filter", "must be an object")
        unknown = sorted(set(flt) - {"topic"})
        if unknown:
            raise BadRequest(f"filter.{unknown[0]}", "is not a known filter (expected topic)")
        topic = _topic(flt.get("topic"), "filter.topic")
    return SearchQuery(text, k, topic)


def parse_documents(body: object, settings: Settings) -> list[NewDocument]:
    """``POST /v1/documents`` with ``{"documents": [{"title", "body", "topic"}, ...]}``."""
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    unknown = sorted(set(body) - {"documents"})
    if unknown:
        raise BadRequest(unknown[0], "is not a known field (expected documents)")
    docs = body.get("documents")
    if not isinstance(docs, list) or not docs:
        raise BadRequest("documents", "must be a non-empty array")
    if len(docs) > settings.max_documents_per_request:
        raise BadRequest(
            "documents", f"must hold at most {settings.max_documents_per_request} documents"
        )
    out = []
    for i, doc in enumerate(docs):
        where = f"documents[{i}]"
        if not isinstance(doc, dict):
            raise BadRequest(where, "must be an object")
        extra = sorted(set(doc) - {"title", "body", "topic"})
        if extra:
            raise BadRequest(f"{where}.{extra[0]}", "is not a known field")
        fields: dict[str, str] = {}
        for name, limit in (
            ("title", TITLE_MAX_CHARS),
            ("body", BODY_MAX_CHARS),
            ("topic", TOPIC_MAX_CHARS),
        ):
            value = doc.get(name)
            if not isinstance(value, str) or not value.strip():
                raise BadRequest(f"{where}.{name}", "must be a non-empty string")
            if len(value) > limit or "\x00" in value:
                raise BadRequest(f"{where}.{name}", f"must be at most {limit} characters")
            fields[name] = value
        out.append(NewDocument(fields["title"], fields["body"], fields["topic"]))
    return out


async def read_json(request: Request, max_bytes: int) -> Any:
    """Read a JSON body with a size bound; wrong type, size or syntax is a 4xx."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise BadRequest("content-type", "must be application/json", status_code=415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise BadRequest("body", f"must be at most {max_bytes} bytes", status_code=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest("body", f"must be at most {max_bytes} bytes", status_code=413)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequest("body", f"is not valid JSON: {exc}", status_code=400) from exc


def parse_document_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("id", "must be a positive integer")
    return int(raw)
