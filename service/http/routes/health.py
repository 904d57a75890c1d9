"""Liveness, readiness, the Prometheus exposition and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.errors import Unavailable
from service.http.openapi import build_schema
from service.http.responses import ORJSONResponse
from service.http.state import engine_of, metrics_of, settings_of


async def healthz(request: Request) -> Response:
    return ORJSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        ok, reason = await engine_of(request).db.readiness()
    except Unavailable as exc:
        return ORJSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return ORJSONResponse(
        {"status": "ready" if ok else "not ready", "reason": reason},
        status_code=200 if ok else 503,
    )


async def metrics_endpoint(request: Request) -> Response:
    payload, ctype = metrics_of(request).exposition()
    return Response(payload, media_type=ctype)


async def openapi_schema(request: Request) -> Response:
    return ORJSONResponse(build_schema(settings_of(request)))
