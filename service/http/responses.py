"""JSON responses (orjson) and the one error body every route answers with."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from service.errors import BadRequest, ServiceError, Unauthorized, Unavailable


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: ServiceError) -> Response:
    """``{"error": {"field"?, "message"}}`` with the error's status and headers."""
    if isinstance(exc, BadRequest):
        body: dict[str, Any] = {"error": {"field": exc.field, "message": exc.message}}
    else:
        body = {"error": {"message": str(exc)}}
    headers = {}
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return ORJSONResponse(body, status_code=exc.status_code, headers=headers)
