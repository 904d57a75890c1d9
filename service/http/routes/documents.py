"""``POST /v1/documents`` and ``DELETE /v1/documents/{doc_id}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.errors import NotFound
from service.http import parsing
from service.http.responses import ORJSONResponse
from service.http.state import engine_of, settings_of


async def documents_post(request: Request) -> Response:
    settings = settings_of(request)
    body = await parsing.read_json(request, settings.max_body_bytes)
    docs = parsing.parse_documents(body, settings)
    ids = await engine_of(request).add_documents(docs)
    return ORJSONResponse({"ids": ids}, status_code=201)


async def documents_delete(request: Request) -> Response:
    doc_id = parsing.parse_document_id(request.path_params["doc_id"])
    if not await engine_of(request).delete_document(doc_id):
        raise NotFound(f"document {doc_id} not found")
    return Response(status_code=204)
