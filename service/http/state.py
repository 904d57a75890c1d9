"""What the routes read from the application: set once by :func:`service.http.app.create_app`
(settings, metrics) and by its lifespan (the engine, the stream search)."""

from __future__ import annotations

from starlette.requests import Request

from service.metrics import Metrics
from service.search import SearchEngine
from service.settings import Settings
from service.stream_search import StreamSearch


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def engine_of(request: Request) -> SearchEngine:
    engine: SearchEngine = request.app.state.engine
    return engine


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def streams_of(request: Request) -> StreamSearch:
    streams: StreamSearch = request.app.state.streams
    return streams
