"""The ``/v1/stats`` view model: figures built from a metrics snapshot, no request in sight.

Counters are summed over every worker (the snapshot is multiprocess-aggregated); the
embedder, cache and GC settings are this worker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service import gcstats
from service.metrics import Metrics
from service.search import SearchEngine
from service.settings import Settings

Snapshot = dict[str, float]


@dataclass(frozen=True, slots=True)
class EngineView:
    """What the stats show of the engine's parts."""

    model_id: str
    loaded: bool
    loads: int
    redis: bool  # it has a Redis client
    results_enabled: bool
    validate: bool

    @classmethod
    def of(cls, engine: SearchEngine) -> EngineView:
        embedder, cache = engine.embedder, engine.cache
        return cls(
            model_id=embedder.model_id,
            loaded=embedder.loaded,
            loads=getattr(embedder, "load_count", int(embedder.loaded)),
            redis=cache is not None and cache.redis is not None,
            results_enabled=cache is not None and cache.results_enabled,
            validate=cache is not None and cache.config.validate,
        )


def build_stats(
    metrics: Metrics, snap: Snapshot, view: EngineView, settings: Settings
) -> dict[str, Any]:
    return {
        "requests": metrics.total("search_http_requests_total", snap),
        "db_searches": metrics.total("search_db_searches_total", snap),
        "embed_calls": metrics.total("search_embed_calls_total", snap),
        "embed_texts": metrics.total("search_embed_texts_total", snap),
        "stream_disconnects": metrics.total("search_stream_disconnects_total", snap),
        "pool_acquire_timeouts": metrics.total("search_db_pool_acquire_timeouts_total", snap),
        "shed": metrics.total("search_shed_requests_total", snap),
        "embedder": {"model_id": view.model_id, "loaded": view.loaded, "loads": view.loads},
        "index_mode": settings.index_mode,
        "cache": cache_stats(metrics, snap, view),
        "gc": gc_stats(snap),
        "metrics": snap,
    }


def gc_stats(snap: Snapshot) -> dict[str, Any]:
    """Pauses summed over workers by generation; thresholds and freeze of this worker."""
    pauses = {}
    for gen in ("0", "1", "2"):
        count = labelled(snap, "search_gc_pause_seconds_count", generation=gen)
        total = labelled(snap, "search_gc_pause_seconds_sum", generation=gen)
        pauses[gen] = {
            "collections": int(count),
            "total_ms": round(total * 1000, 3),
            "mean_ms": round(total * 1000 / count, 4) if count else None,
        }
    return {"pauses": pauses, **gcstats.state()}


def labelled(snap: Snapshot, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    want = [f"{k}={v}" for k, v in labels.items()]
    total = 0.0
    for key, value in snap.items():
        if key == name or key.startswith(name + "{"):
            inner = key[len(name) + 1 : -1].split(",") if "{" in key else []
            if all(w in inner for w in want):
                total += value
    return total


def cache_stats(metrics: Metrics, snap: Snapshot, view: EngineView) -> dict[str, Any]:
    def layers(name: str, cache: str) -> dict[str, float]:
        return {layer: labelled(snap, name, cache=cache, layer=layer) for layer in ("l1", "redis")}

    sources = {
        s: labelled(snap, "search_result_source_total", source=s)
        for s in ("l1", "redis", "computed", "bypass")
    }
    answered = sum(sources.values())
    if not view.redis:
        breaker = "disabled"
    else:
        code = int(labelled(snap, "search_cache_breaker_state"))
        breaker = {0: "closed", 1: "half_open"}.get(code, "open")
    return {
        "enabled": view.results_enabled,
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
        "writes_dropped": metrics.total("search_cache_writes_dropped_total", snap),
        "breaker_state": breaker,
        "coalesced": metrics.total("search_coalesced_requests_total", snap),
        "early_refreshes": metrics.total("search_cache_early_refreshes_total", snap),
        "lock": {
            o: labelled(snap, "search_cache_lock_total", outcome=o) for o in ("acquired", "waited")
        },
        "validate": view.validate,
        "validations": validations(snap),
    }


def validations(snap: Snapshot) -> dict[str, float]:
    """Older entries checked against the write log: kept, or dropped and by what."""
    name = "search_cache_validations_total"
    by = {o: labelled(snap, name, outcome=o) for o in ("insert", "delete", "reset", "gap")}
    return {"kept": labelled(snap, name, outcome="kept"), "dropped": sum(by.values()), **by}
