"""The application factory and its lifespan.

Run with ``uvicorn service.http.app:create_app --factory``. Settings are read once, here.

The lifespan opens each part on one :class:`contextlib.AsyncExitStack`, which closes
them in reverse order whether start-up completes or fails halfway:

==================  ===========================================  =========================
part                opened                                       closed
==================  ===========================================  =========================
gc.freeze           last, after start-up (SEARCH_GC_FREEZE)      gc.unfreeze(), last
GC monitor          gc.callbacks hook + a flusher task           task cancelled, unhooked
embedder            built (a model loads on first use)           aclose()
database pool       asyncpg pool (fails: Unavailable)            closed, bounded in time
cache               Redis client, built without connecting       closed, bounded in time
schema + model      DDL under an advisory lock; model check      (nothing to close)
engine              SearchEngine                                 background refreshes end
stream search       StreamSearch (its cache lives in memory)     (nothing to close)
==================  ===========================================  =========================
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service import gcstats
from service.cache.search_cache import SearchCache
from service.db.database import Database
from service.embed.factory import embedder_from_settings
from service.errors import CorpusMismatch, ServiceError
from service.http.cpu_slowdown import CpuSlowdownMiddleware
from service.http.middleware import RequestMiddleware
from service.http.responses import ORJSONResponse, error_response
from service.http.routes import KNOWN_PATHS, ROUTES
from service.limits import Bound
from service.metrics import Metrics
from service.search import SearchEngine
from service.settings import Settings
from service.stream_search import StreamSearch

log = logging.getLogger("service")

GC_FLUSH_INTERVAL_S = 1.0


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


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _start_gc_monitor(stack: contextlib.AsyncExitStack, metrics: Metrics) -> None:
    """Time every collection into ``search_gc_pause_seconds``; undone by ``stack``."""
    monitor = gcstats.GcMonitor(
        lambda gen, seconds: metrics.gc_pause.labels(str(gen)).observe(seconds)
    )
    monitor.install()
    stack.callback(monitor.uninstall)
    flusher = asyncio.create_task(monitor.flush_every(GC_FLUSH_INTERVAL_S), name="gc-pauses")
    stack.push_async_callback(_cancel, flusher)


async def start_engine(
    stack: contextlib.AsyncExitStack, settings: Settings, metrics: Metrics
) -> SearchEngine:
    """Open every part on ``stack`` (closed in reverse order) and return the engine."""
    if settings.gc_freeze:
        stack.callback(gc.unfreeze)  # first on the stack: undone last
    gcstats.configure(settings.gc_threshold_values())
    _start_gc_monitor(stack, metrics)
    embedder = embedder_from_settings(settings, on_call=metrics.on_embed)
    stack.push_async_callback(embedder.aclose)
    db = await Database.open(settings, metrics)
    stack.push_async_callback(db.close)
    # Building the client does not connect: a Redis that is down never stops start-up.
    cache = SearchCache.connect(settings, metrics, embedder.model_id)
    stack.push_async_callback(cache.aclose)
    await db.ensure_schema(create_index=settings.create_index_on_start)
    try:
        await db.check_model(embedder.model_id)
    except CorpusMismatch as exc:
        # Start anyway so that a re-seed can fix it; searches answer 409 until then.
        log.warning("%s", exc)
    engine = SearchEngine(
        db,
        embedder,
        cache=cache,
        metrics=metrics,
        coalesce=settings.coalesce_enabled,
        db_batch=settings.db_batch_enabled,
    )
    stack.push_async_callback(engine.aclose)
    if settings.gc_freeze:
        # start-up objects live as long as the process: keep them out of every
        # later full collection (measured: docs/profiling.md)
        frozen = gcstats.freeze_startup_objects()
        log.info("gc.freeze(): %d start-up objects frozen", frozen)
    return engine


def stream_search(engine: SearchEngine, settings: Settings, metrics: Metrics) -> StreamSearch:
    # the streams' own queue of work, apart from /v1/search's in-flight bound
    slots = Bound(settings.stream_slots, "stream searches in flight", metrics.shed.inc)
    return StreamSearch(
        engine,
        batch_size=settings.stream_batch_size,
        cache_bytes=int(settings.stream_cache_mb * 2**20),
        result_ttl_s=settings.result_ttl_s,
        ttl_jitter=settings.ttl_jitter,
        l1_ttl_s=settings.l1_ttl_s,
        fill_max_k=settings.stream_cache_max_k,
        query_bound=slots,
        max_queue_wait_s=settings.stream_max_queue_wait_s,
        metrics=metrics,
        coalesce=settings.coalesce_enabled,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """Application factory; reads settings from the environment when none are given."""
    settings = Settings.from_env() if settings is None else settings
    metrics = Metrics()
    # per-worker bounds (service.limits): query work in flight, and open streams
    queries = Bound(settings.max_in_flight, "search requests in flight", metrics.shed.inc)
    streams = Bound(settings.max_streams, "open streams", metrics.shed.inc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            engine = await start_engine(stack, settings, metrics)
            app.state.engine = engine
            app.state.streams = stream_search(engine, settings, metrics)
            yield

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ServiceError: _service_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers=handlers)
    app.state.settings = settings
    app.state.metrics = metrics
    if settings.debug_cpu_slowdown:  # calibration's injected slowdown (http/cpu_slowdown.py)
        app.add_middleware(CpuSlowdownMiddleware, slowdown=settings.debug_cpu_slowdown)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        queries=queries,
        streams=streams,
        request_delay_ms=settings.debug_request_delay_ms,
        known_paths=KNOWN_PATHS,
    )
    return app
