"""``/v1/search`` (GET and POST, one route so that a 405's Allow lists both) and its SSE stream."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response

from service.http import parsing
from service.http.responses import ORJSONResponse
from service.http.routes.debug import leak
from service.http.state import engine_of, metrics_of, settings_of, streams_of
from service.http.stream import EventStreamResponse, search_events, until_disconnect
from service.model import SearchQuery, row_dict
from service.search import SearchEngine

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer


async def search(request: Request) -> Response:
    if request.method == "POST":
        return await search_post(request)
    return await search_get(request)


async def search_get(request: Request) -> Response:
    settings = settings_of(request)
    parsing.check_query_string(request.scope["query_string"])
    query = parsing.parse_search_params(request.query_params, settings, default_k=10)
    return await _search(engine_of(request), query, settings.debug_leak_responses)


async def search_post(request: Request) -> Response:
    settings = settings_of(request)
    body = await parsing.read_json(request, settings.max_body_bytes)
    query = parsing.parse_search_body(body, settings)
    return await _search(engine_of(request), query, settings.debug_leak_responses)


async def _search(engine: SearchEngine, query: SearchQuery, leak_responses: bool) -> Response:
    start = time.perf_counter()
    result = await engine.search(query)
    took_ms = (time.perf_counter() - start) * 1000
    response = ORJSONResponse(
        {"results": [row_dict(row) for row in result.rows], "took_ms": round(took_ms, 3)}
    )
    if leak_responses:
        leak(bytes(response.body))
    return response


async def search_stream(request: Request) -> Response | EventStreamResponse:
    started = time.perf_counter()
    settings = settings_of(request)
    parsing.check_query_string(request.scope["query_string"])
    query = parsing.parse_search_params(request.query_params, settings, default_k=100)
    metrics = metrics_of(request)
    # the whole result before any byte: errors are JSON responses, and no database
    # connection is held while the stream sends (service.stream_search)
    work = asyncio.ensure_future(streams_of(request).result(query))
    if not await until_disconnect(work, request.receive):
        metrics.stream_disconnects.inc()
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody left to read it
    return search_events(
        work.result(),
        started=started,
        write_timeout_s=settings.stream_write_timeout_s,
        on_write_timeout=metrics.stream_write_timeouts.inc,
    )
