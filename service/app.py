"""Routes and lifespan of the search service.

Run with ``uvicorn service.app:create_app --factory``. Settings are read once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import api, debug, gcstats
from service.batch import BatchingEmbedder
from service.cache import SearchCache
from service.db import Database
from service.embed import Embedder, make_embedder
from service.embed_http import HttpEmbedderConfig
from service.errors import (
    BadRequest,
    CorpusMismatch,
    Forbidden,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from service.metrics import Metrics
from service.openapi import build_schema
from service.search import SearchEngine
from service.settings import Settings
from service.shed import LoadShedMiddleware
from service.stream import EventStreamResponse, sse_event

log = logging.getLogger("service")


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: ServiceError) -> Response:
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


def _state(request: Request) -> tuple[Settings, SearchEngine, Metrics]:
    app_state = request.app.state
    return app_state.settings, app_state.engine, app_state.metrics


# ---------------------------------------------------------------------------- routes


async def search(request: Request) -> Response:
    if request.method == "POST":
        return await search_post(request)
    return await search_get(request)


async def search_get(request: Request) -> Response:
    settings, engine, _ = _state(request)
    api.check_query_string(request.scope["query_string"])
    query = api.parse_search_params(request.query_params, settings, default_k=10)
    return await _search(engine, query, settings.debug_leak_responses)


async def search_post(request: Request) -> Response:
    settings, engine, _ = _state(request)
    body = await api.read_json(request, settings.max_body_bytes)
    return await _search(
        engine, api.parse_search_body(body, settings), settings.debug_leak_responses
    )


async def _search(
    engine: SearchEngine, query: api.SearchQuery, leak_responses: bool = False
) -> Response:
    start = time.perf_counter()
    result = await engine.search(query)
    took_ms = (time.perf_counter() - start) * 1000
    response = ORJSONResponse(
        {"results": [h.as_dict() for h in result.hits], "took_ms": round(took_ms, 3)}
    )
    if leak_responses:
        debug.leak(bytes(response.body))
    return response


async def search_stream(request: Request) -> Response | EventStreamResponse:
    settings, engine, metrics = _state(request)
    api.check_query_string(request.scope["query_string"])
    query = api.parse_search_params(request.query_params, settings, default_k=100)
    start = time.perf_counter()
    batches = engine.stream(query)
    counter = {"count": 0, "batch": 0}

    def frame(hits: Any) -> bytes:
        counter["count"] += len(hits)
        data = {
            "batch": counter["batch"],
            "elapsed_ms": round((time.perf_counter() - start) * 1000, 3),
            "results": [h.as_dict() for h in hits],
        }
        counter["batch"] += 1
        return sse_event("results", data)

    def done() -> bytes:
        return sse_event(
            "done",
            {
                "count": counter["count"],
                "batches": counter["batch"],
                "took_ms": round((time.perf_counter() - start) * 1000, 3),
            },
        )

    first_batch = await anext(batches, None)
    if first_batch is None:
        await batches.aclose()
        first = done()

        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""  # pragma: no cover - makes this an async generator

        return EventStreamResponse(first, nothing())
    first = frame(first_batch)

    async def rest() -> AsyncIterator[bytes]:
        try:
            async for hits in batches:
                yield frame(hits)
            yield done()
        finally:
            await batches.aclose()

    def on_error(exc: BaseException) -> bytes:
        log.warning("stream failed: %s", exc)
        message = str(exc) if isinstance(exc, ServiceError) else "internal error"
        return sse_event("error", {"message": message})

    return EventStreamResponse(
        first, rest(), on_disconnect=metrics.stream_disconnects.inc, on_error=on_error
    )


async def documents_post(request: Request) -> Response:
    settings, engine, _ = _state(request)
    body = await api.read_json(request, settings.max_body_bytes)
    docs = api.parse_documents(body, settings)
    ids = await engine.add_documents(docs)
    return ORJSONResponse({"ids": ids}, status_code=201)


async def documents_delete(request: Request) -> Response:
    _, engine, _ = _state(request)
    doc_id = api.parse_document_id(request.path_params["doc_id"])
    if not await engine.delete_document(doc_id):
        raise NotFound(f"document {doc_id} not found")
    return Response(status_code=204)


async def cache_invalidate(request: Request) -> Response:
    """Admin: bump the corpus generation. 404 unless SEARCH_ADMIN_TOKEN is configured."""
    settings, engine, _ = _state(request)
    if not settings.admin_token:
        raise NotFound("not found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("admin endpoint: send Authorization: Bearer <SEARCH_ADMIN_TOKEN>")
    if not hmac.compare_digest(token.strip().encode(), settings.admin_token.encode()):
        raise Forbidden("admin endpoint: wrong token")
    generation = await engine.invalidate("admin")
    if generation is None:
        raise Unavailable("the cache cannot be invalidated: REDIS_URL unset or Redis unreachable")
    return ORJSONResponse({"generation": generation})


async def openapi_schema(request: Request) -> Response:
    settings, _, _ = _state(request)
    return ORJSONResponse(build_schema(settings))


async def healthz(request: Request) -> Response:
    return ORJSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    _, engine, _ = _state(request)
    try:
        ok, reason = await engine.db.readiness()
    except Unavailable as exc:
        return ORJSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return ORJSONResponse(
        {"status": "ready" if ok else "not ready", "reason": reason},
        status_code=200 if ok else 503,
    )


async def metrics_endpoint(request: Request) -> Response:
    _, _, metrics = _state(request)
    payload, ctype = metrics.exposition()
    return Response(payload, media_type=ctype)


async def stats(request: Request) -> Response:
    settings, engine, metrics = _state(request)
    snap = metrics.snapshot()
    return ORJSONResponse(
        {
            "requests": metrics.total("search_http_requests_total", snap),
            "db_searches": metrics.total("search_db_searches_total", snap),
            "embed_calls": metrics.total("search_embed_calls_total", snap),
            "embed_texts": metrics.total("search_embed_texts_total", snap),
            "stream_disconnects": metrics.total("search_stream_disconnects_total", snap),
            "pool_acquire_timeouts": metrics.total("search_db_pool_acquire_timeouts_total", snap),
            "shed": metrics.total("search_shed_requests_total", snap),
            "embedder": {
                "model_id": engine.embedder.model_id,
                "loaded": engine.embedder.loaded,
                "loads": getattr(engine.embedder, "load_count", int(engine.embedder.loaded)),
            },
            "index_mode": settings.index_mode,
            "cache": _cache_stats(metrics, snap, engine),
            "gc": _gc_stats(snap),
            "metrics": snap,
        }
    )


def _gc_stats(snap: dict[str, float]) -> dict[str, Any]:
    """Pauses summed over workers by generation; thresholds and freeze of this worker."""
    pauses = {}
    for gen in ("0", "1", "2"):
        count = _labelled(snap, "search_gc_pause_seconds_count", generation=gen)
        total = _labelled(snap, "search_gc_pause_seconds_sum", generation=gen)
        pauses[gen] = {
            "collections": int(count),
            "total_ms": round(total * 1000, 3),
            "mean_ms": round(total * 1000 / count, 4) if count else None,
        }
    return {"pauses": pauses, **gcstats.state()}


def _labelled(snap: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    want = [f"{k}={v}" for k, v in labels.items()]
    total = 0.0
    for key, value in snap.items():
        if key == name or key.startswith(name + "{"):
            inner = key[len(name) + 1 : -1].split(",") if "{" in key else []
            if all(w in inner for w in want):
                total += value
    return total


def _cache_stats(metrics: Metrics, snap: dict[str, float], engine: SearchEngine) -> dict[str, Any]:
    def layers(name: str, cache: str) -> dict[str, float]:
        return {layer: _labelled(snap, name, cache=cache, layer=layer) for layer in ("l1", "redis")}

    sources = {
        s: _labelled(snap, "search_result_source_total", source=s)
        for s in ("l1", "redis", "computed", "bypass")
    }
    answered = sum(sources.values())
    if engine.cache is None or engine.cache.redis is None:
        breaker = "disabled"
    else:
        code = int(_labelled(snap, "search_cache_breaker_state"))
        breaker = {0: "closed", 1: "half_open"}.get(code, "open")
    return {
        "enabled": engine.cache is not None and engine.cache.results_enabled,
        "hits": layers("search_cache_hits_total", "result"),
        "misses": layers("search_cache_misses_total", "result"),
        "embedding_hits": layers("search_cache_hits_total", "embedding"),
        "embedding_misses": layers("search_cache_misses_total", "embedding"),
        "sources": sources,
        "hit_ratio": (sources["l1"] + sources["redis"]) / answered if answered else 0.0,
        "evictions": metrics.total("search_cache_evictions_total", snap),
        "invalidations": metrics.total("search_cache_invalidations_total", snap),
        "redis_errors": metrics.total("search_cache_redis_errors_total", snap),
        "redis_skipped": metrics.total("search_cache_redis_skipped_total", snap),
        "breaker_state": breaker,
        "coalesced": metrics.total("search_coalesced_requests_total", snap),
        "early_refreshes": metrics.total("search_cache_early_refreshes_total", snap),
        "lock": {
            o: _labelled(snap, "search_cache_lock_total", outcome=o) for o in ("acquired", "waited")
        },
        "validate": engine.cache is not None and engine.cache.config.validate,
        "validations": _validations(snap),
    }


def _validations(snap: dict[str, float]) -> dict[str, float]:
    """Older entries checked against the write log: kept, or dropped and by what."""
    name = "search_cache_validations_total"
    by = {o: _labelled(snap, name, outcome=o) for o in ("insert", "delete", "reset", "gap")}
    return {"kept": _labelled(snap, name, outcome="kept"), "dropped": sum(by.values()), **by}


ROUTES = [
    # One route for both methods: two routes on a path make a 405's Allow list only one.
    Route("/v1/search", search, methods=["GET", "POST"]),
    Route("/v1/search/stream", search_stream, methods=["GET"]),
    Route("/v1/documents", documents_post, methods=["POST"]),
    Route("/v1/documents/{doc_id}", documents_delete, methods=["DELETE"]),
    Route("/v1/stats", stats, methods=["GET"]),
    Route("/v1/cache/invalidate", cache_invalidate, methods=["POST"]),
    Route("/v1/debug/tracemalloc/start", debug.tracemalloc_start, methods=["POST"]),
    Route("/v1/debug/tracemalloc/top", debug.tracemalloc_top, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi_schema, methods=["GET"]),
]
KNOWN_PATHS = {r.path for r in ROUTES}


def route_label(path: str) -> str:
    if path in KNOWN_PATHS:
        return path
    if path.startswith("/v1/documents/"):
        return "/v1/documents/{id}"
    return "other"


class MetricsMiddleware:
    """Counts and times every request by route template (bounded label cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, request_delay_ms: int) -> None:
        self.app = app
        self.metrics = metrics
        self.delay = request_delay_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(scope["path"])
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            if self.delay and route.startswith("/v1/search"):
                await asyncio.sleep(self.delay)
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError), f"handler registered for ServiceError got {exc!r}"
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException), f"handler registered for HTTPException got {exc!r}"
    headers = dict(exc.headers) if exc.headers else None
    return ORJSONResponse({"error": {"message": exc.detail}}, exc.status_code, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return ORJSONResponse({"error": {"message": "internal error"}}, status_code=500)


def _embedder(settings: Settings, metrics: Metrics) -> Embedder:
    http = None
    if settings.embedder == "http":
        assert settings.embed_http_url, "validate() requires SEARCH_EMBED_HTTP_URL for http"
        http = HttpEmbedderConfig(
            url=settings.embed_http_url,
            model=settings.embed_http_model,
            api_key=settings.embed_http_api_key,
            timeout_s=settings.embed_http_timeout_s,
            connect_timeout_s=settings.embed_http_connect_timeout_s,
            retries=settings.embed_http_retries,
            backoff_s=settings.embed_http_backoff_s,
            max_connections=settings.embed_http_max_connections,
        )
    base = make_embedder(
        settings.embedder, threads=settings.embed_threads, on_call=metrics.on_embed, http=http
    )
    if not settings.batch_enabled:
        return base
    return BatchingEmbedder(base, settings.batch_max_size, settings.batch_max_wait_ms / 1000)


def create_app(settings: Settings | None = None) -> Starlette:
    """Application factory; reads settings from the environment when none are given."""
    settings = Settings.from_env() if settings is None else settings
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gcstats.configure(settings.gc_threshold_values())
        gc_monitor = gcstats.GcMonitor(
            lambda gen, seconds: metrics.gc_pause.labels(str(gen)).observe(seconds)
        )
        gc_monitor.install()
        gc_flusher = asyncio.create_task(gc_monitor.flush_every(1.0), name="gc-pauses")
        embedder = _embedder(settings, metrics)
        try:
            db = await Database.open(settings, metrics)
        except BaseException:
            await embedder.aclose()
            raise
        # Building the client does not connect: a Redis that is down never stops start-up.
        cache = SearchCache.connect(settings, metrics, embedder.model_id)
        engine: SearchEngine | None = None
        try:
            await db.ensure_schema(create_index=settings.create_index_on_start)
            try:
                await db.check_model(embedder.model_id)
            except CorpusMismatch as exc:
                # Start anyway so that a re-seed can fix it; searches answer 409 until then.
                log.warning("%s", exc)
            engine = SearchEngine(
                db,
                embedder,
                settings.stream_batch_size,
                cache=cache,
                metrics=metrics,
                coalesce=settings.coalesce_enabled,
                stream_cache_max_k=settings.stream_cache_max_k,
            )
            app.state.engine = engine
            if settings.gc_freeze:
                # start-up objects live as long as the process: keep them out of every
                # later full collection (measured: docs/profiling.md)
                frozen = gcstats.freeze_startup_objects()
                log.info("gc.freeze(): %d start-up objects frozen", frozen)
            yield
        finally:
            # reverse order of opening, each bounded in time
            if engine is not None:
                await engine.aclose()
            await cache.aclose()
            await db.close()
            await embedder.aclose()
            gc_flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gc_flusher
            gc_monitor.uninstall()
            if settings.gc_freeze:
                gc.unfreeze()

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ServiceError: _service_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers=handlers)
    app.state.settings = settings
    app.state.metrics = metrics
    # Added first, so it runs inside MetricsMiddleware: shed requests are counted too.
    app.add_middleware(
        LoadShedMiddleware, max_in_flight=settings.max_in_flight, on_shed=metrics.shed.inc
    )
    app.add_middleware(
        MetricsMiddleware, metrics=metrics, request_delay_ms=settings.debug_request_delay_ms
    )
    return app
