"""Factory fixtures for results documents shared by the tests of ci/."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from ci.results import LatencySummary, RunResults, ScenarioResult

ResultsDictFactory = Callable[..., dict[str, Any]]
RunFactory = Callable[..., RunResults]


def _latency(scale: float) -> dict[str, float]:
    base = {"p50": 40.0, "p90": 80.0, "p95": 100.0, "p99": 180.0, "p999": 300.0}
    out = {k: v * scale for k, v in base.items()}
    out.update({"max": 400.0 * scale, "min": 5.0 * scale, "mean": 50.0 * scale})
    return out


def _scenario(name: str, *, with_cache: bool, t0: float) -> dict[str, Any]:
    return {
        "name": name,
        "tool": "k6",
        "label": None,
        "started_at": "2026-11-27T10:00:00+00:00",
        "duration_s": 60.0,
        "requests": 3000,
        "throughput_rps": 50.0,
        "error_rate": 0.0,
        "latency_ms": _latency(1.0),
        "ttfe_ms": _latency(0.5),
        "dropped_iterations": 0,
        "thresholds": [{"metric": "http_req_duration", "expression": "p(95)<2000", "ok": True}],
        "cache": {
            "hit_ratio": 0.8,
            "hits": 2400,
            "misses": 600,
            "db_searches": 600,
            "coalesced": 12,
        }
        if with_cache
        else None,
        "database": {
            "calls": 600,
            "total_exec_ms": 1200.0,
            "mean_exec_ms": 2.0,
            "max_connections": 10,
        },
        "resources": {
            "samples": [
                {
                    "t": float(t),
                    "pid": 4242,
                    "role": "service",
                    "rss_mb": 200.0 + t0 + t * 0.1,
                    "cpu_percent": 35.0 + (t % 7),
                    "connections": 10,
                }
                for t in range(0, 60, 5)
            ],
            "peak_rss_mb": 206.0 + t0,
        },
        "timeseries": [
            {
                "t": float(t),
                "rps": 48.0 + (t % 5),
                "p50_ms": 40.0 + (t % 3),
                "p95_ms": 100.0 + (t % 11),
                "p99_ms": 180.0 + (t % 13),
                "errors": 0,
            }
            for t in range(60)
        ],
        "memory": None,
    }


def build_results_dict(
    run_id: str = "run-1",
    *,
    profile: str = "pr",
    commit: str | None = "0123456789abcdef0123456789abcdef01234567",
    ref: str | None = "refs/heads/feature",
    scenarios: tuple[str, ...] = ("search", "stream"),
    machine_class: str = "2cpu-24gb-x86_64",
    corpus_hash: str = "sha256:abc",
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "run": {
            "id": run_id,
            "created_at": "2026-11-27T10:00:00+00:00",
            "git_commit": commit,
            "git_ref": ref,
            "profile": profile,
            "machine": {
                "class": machine_class,
                "cpus": 2,
                "memory_gb": 24.0,
                "platform": "Linux-6.1-x86_64",
                "python": "3.11.9",
            },
            "tools": {"k6": "v0.55.0", "vegeta": None},
            "settings": {"cache_enabled": True, "pool_size": 10, "index": "hnsw"},
            "corpus": {"docs": 10000, "seed": 7, "embedder": "hash-384", "hash": corpus_hash},
            "target": "http://127.0.0.1:8000",
        },
        "scenarios": [
            _scenario(name, with_cache=(i == 0), t0=float(i)) for i, name in enumerate(scenarios)
        ],
        "benchmarks": None,
    }


@pytest.fixture
def results_dict() -> ResultsDictFactory:
    """Factory: a valid results document as plain JSON data (a fresh deep copy each call)."""

    def make(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(build_results_dict(*args, **kwargs))

    return make


def scale_scenario(
    s: ScenarioResult,
    *,
    latency: float = 1.0,
    throughput: float = 1.0,
    error_rate: float | None = None,
    hit_ratio: float | None = None,
    rss: float = 1.0,
) -> ScenarioResult:
    lat = s.latency_ms
    scaled = LatencySummary(*(getattr(lat, f.name) * latency for f in msgspec.structs.fields(lat)))
    cache = s.cache
    if cache is not None and hit_ratio is not None:
        cache = msgspec.structs.replace(cache, hit_ratio=hit_ratio)
    peak = s.resources.peak_rss_mb
    return msgspec.structs.replace(
        s,
        latency_ms=scaled,
        throughput_rps=s.throughput_rps * throughput,
        error_rate=s.error_rate if error_rate is None else error_rate,
        cache=cache,
        resources=msgspec.structs.replace(
            s.resources, peak_rss_mb=None if peak is None else peak * rss
        ),
    )


@pytest.fixture
def make_run() -> RunFactory:
    """Factory: a RunResults whose every scenario is scaled (skips schema validation, fast)."""
    template = RunResults.from_dict(build_results_dict())

    def make(run_id: str = "run", **scale: Any) -> RunResults:
        return msgspec.structs.replace(
            template,
            run=msgspec.structs.replace(template.run, id=run_id),
            scenarios=tuple(scale_scenario(s, **scale) for s in template.scenarios),
        )

    return make
