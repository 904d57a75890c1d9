"""Prometheus metrics, aggregated across worker processes.

With several uvicorn workers each process writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` (set by the stack) and ``/metrics`` or ``/v1/stats`` on any
worker reads all of them. Without that variable (tests, one process) a private registry
is used.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
GC_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Metrics:
    """All of the service's instruments, registered on one registry."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode instruments must live on no registry of their own: the
        # MultiProcessCollector reads them back from the shared directory.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        if self.multiprocess:
            # Instruments in multiprocess mode write to files; registering them with the
            # default registry would only duplicate them, so give them a throwaway one.
            reg = CollectorRegistry()
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}

        self.requests = Counter(
            "search_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "search_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "search_http_requests_in_flight", "Requests being served", registry=reg, **gauge_mode
        )
        self.pool_size = Gauge(
            "search_db_pool_size", "Connections open in the pool", registry=reg, **gauge_mode
        )
        self.pool_in_use = Gauge(
            "search_db_pool_in_use", "Connections checked out", registry=reg, **gauge_mode
        )
        self.pool_acquire_wait = Histogram(
            "search_db_pool_acquire_wait_seconds",
            "Time waiting for a pooled connection",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.pool_acquire_timeouts = Counter(
            "search_db_pool_acquire_timeouts_total",
            "Acquires that timed out (503)",
            registry=reg,
        )
        self.db_searches = Counter(
            "search_db_searches_total",
            "Vector searches executed in PostgreSQL",
            ["mode"],
            registry=reg,
        )
        self.db_search_seconds = Histogram(
            "search_db_search_duration_seconds",
            "Vector search time in PostgreSQL",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.embed_calls = Counter(
            "search_embed_calls_total", "Calls into the embedding model", registry=reg
        )
        self.embed_texts = Counter(
            "search_embed_texts_total", "Texts embedded by the model", registry=reg
        )
        self.embed_seconds = Histogram(
            "search_embed_duration_seconds",
            "Time per embedding call",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.embed_batch_size = Histogram(
            "search_embed_batch_size",
            "Texts per embedding call",
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.documents_written = Counter(
            "search_documents_written_total",
            "Documents inserted or deleted",
            ["op"],
            registry=reg,
        )
        self.stream_disconnects = Counter(
            "search_stream_disconnects_total",
            "SSE streams cancelled by a client disconnect",
            registry=reg,
        )
        self.streams_open = Gauge(
            "search_streams_open", "SSE streams being answered", registry=reg, **gauge_mode
        )
        self.stream_write_timeouts = Counter(
            "search_stream_write_timeouts_total",
            "SSE streams ended because their reader took nothing for the write timeout",
            registry=reg,
        )
        self.stream_cache_bytes = Gauge(
            "search_stream_cache_bytes",
            "Bytes of encoded stream results kept (per worker, summed)",
            registry=reg,
            **gauge_mode,
        )
        # cache, coalescing (service/cache/, service/coalesce.py)
        self.cache_hits = Counter(
            "search_cache_hits_total", "Cache hits", ["cache", "layer"], registry=reg
        )
        self.cache_misses = Counter(
            "search_cache_misses_total", "Cache misses", ["cache", "layer"], registry=reg
        )
        self.cache_evictions = Counter(
            "search_cache_evictions_total",
            "L1 entries evicted by the size bound",
            ["cache"],
            registry=reg,
        )
        self.cache_invalidations = Counter(
            "search_cache_invalidations_total",
            "Corpus generation bumps",
            ["reason"],
            registry=reg,
        )
        self.cache_validations = Counter(
            "search_cache_validations_total",
            "Older result entries checked against the write log: kept, or dropped by the "
            "record that changed them (insert, delete, reset) or a gap in the log; an L1 "
            "copy and then a Redis copy each count",
            ["outcome"],
            registry=reg,
        )
        self.redis_errors = Counter(
            "search_cache_redis_errors_total",
            "Redis calls that failed or timed out",
            ["op"],
            registry=reg,
        )
        self.redis_skipped = Counter(
            "search_cache_redis_skipped_total",
            "Redis calls skipped by the open breaker",
            registry=reg,
        )
        self.cache_writes_dropped = Counter(
            "search_cache_writes_dropped_total",
            "Redis writes dropped behind the response: the queue was full, or the breaker open",
            ["reason"],
            registry=reg,
        )
        self.redis_lag_extensions = Counter(
            "search_cache_redis_lag_extensions_total",
            "Redis call deadlines extended because the event loop lagged (the call's timer "
            "fired more than the timeout late): this worker's backlog, not Redis",
            registry=reg,
        )
        breaker_mode: dict[str, Any] = {"multiprocess_mode": "livemax"} if self.multiprocess else {}
        self.breaker_state = Gauge(
            "search_cache_breaker_state",
            "Redis breaker: 0 closed, 1 half-open, 2 open (worst worker)",
            registry=reg,
            **breaker_mode,
        )
        self.result_source = Counter(
            "search_result_source_total",
            "Where a /v1/search result came from: l1, redis, computed, bypass (no cache)",
            ["source"],
            registry=reg,
        )
        self.early_refreshes = Counter(
            "search_cache_early_refreshes_total",
            "XFetch early recomputations started",
            registry=reg,
        )
        self.coalesced = Counter(
            "search_coalesced_requests_total",
            "Requests that joined a computation in flight",
            registry=reg,
        )
        self.coalesce_waiters = Histogram(
            "search_coalesce_waiters",
            "Callers sharing one computation",
            buckets=(*SIZE_BUCKETS, 256, 512),
            registry=reg,
        )
        self.redis_lock = Counter(
            "search_cache_lock_total", "Cross-worker lock outcomes", ["outcome"], registry=reg
        )
        self.shed = Counter(
            "search_shed_requests_total",
            "Search requests refused with 503 by load shedding (SEARCH_MAX_IN_FLIGHT)",
            registry=reg,
        )
        self.gc_pause = Histogram(
            "search_gc_pause_seconds",
            "Garbage-collection pauses, by generation (gc.callbacks)",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=reg,
        )
        if self.multiprocess:
            # untyped in prometheus_client; the call is its documented use
            prom_multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]

    def on_embed(self, texts: int, seconds: float) -> None:
        self.embed_calls.inc()
        self.embed_texts.inc(texts)
        self.embed_seconds.observe(seconds)
        self.embed_batch_size.observe(texts)

    def on_breaker(self, state: str) -> None:
        self.breaker_state.set({"closed": 0, "half_open": 1, "open": 2}[state])

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def snapshot(self) -> dict[str, float]:
        """Flatten every sample to ``name{label=value,...}`` -> value (counters summed)."""
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                out[key] = out.get(key, 0.0) + float(sample.value)
        return out

    def total(self, name: str, snapshot: dict[str, float] | None = None) -> float:
        """Sum of a metric's samples over all label values."""
        snap = self.snapshot() if snapshot is None else snapshot
        return sum(v for k, v in snap.items() if k == name or k.startswith(name + "{"))
