"""Admin routes (:func:`service.http.auth.require_admin`): cache invalidation and EXPLAIN."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.errors import Unavailable
from service.http import parsing
from service.http.auth import require_admin
from service.http.responses import ORJSONResponse
from service.http.state import engine_of, settings_of


async def cache_invalidate(request: Request) -> Response:
    """Bump the corpus generation: no cached result survives."""
    require_admin(request)
    generation = await engine_of(request).invalidate("admin")
    if generation is None:
        raise Unavailable("the cache cannot be invalidated: REDIS_URL unset or Redis unreachable")
    return ORJSONResponse({"generation": generation})


async def explain(request: Request) -> Response:
    """``GET /v1/admin/explain?q=&k=&topic=``: EXPLAIN (ANALYZE, BUFFERS, SETTINGS) of the
    statement a search for these parameters runs, under the settings it runs with."""
    require_admin(request)
    settings = settings_of(request)
    parsing.check_query_string(request.scope["query_string"])
    query = parsing.parse_search_params(request.query_params, settings, default_k=10)
    explained = await engine_of(request).explain(query)
    return ORJSONResponse(explained.as_dict())
