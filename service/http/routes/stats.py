"""``GET /v1/stats``: the counters as JSON (figures built by :mod:`service.http.stats_view`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.http.responses import ORJSONResponse
from service.http.state import engine_of, metrics_of, settings_of
from service.http.stats_view import EngineView, build_stats


async def stats(request: Request) -> Response:
    engine = engine_of(request)
    metrics = metrics_of(request)
    view = EngineView.of(engine)
    return ORJSONResponse(build_stats(metrics, metrics.snapshot(), view, settings_of(request)))
