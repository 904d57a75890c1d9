"""The gate's micro-benchmark cases: the search hot path's pure functions, timed in-process.

A script, not a module of the harness's process: each side's own venv python runs it with
that side's worktree as the working directory (``python micro_cases.py``), so the code it
times is the side's ``service`` package with the side's dependencies. It imports the
standard library and, by name (:func:`importlib.import_module`), the side's ``service``;
never ``ci``: a side's venv may hold another revision's harness, and the harness process
itself never imports ``service`` (the two are separate programs). The cases are the base
revision's harness's, the same for both sides.

=================  ===================================================  =========================
case               one call                                             the side's code it runs
=================  ===================================================  =========================
search_response    the body of a search answer with 10 hits, built as   ``ORJSONResponse``,
                   ``/v1/search`` builds it                             ``row_dict``
stream_frame       every SSE frame of one k=200 stream (its batches     ``search_events``
                   encoded beforehand, as a cached result's are)        (``encode``, ``Settings``)
cache_round_trip   a 10-hit result cache entry encoded and decoded      ``CachedResult``
parse_search       a ``POST /v1/search`` body turned into a query       ``parse_search_body``
=================  ===================================================  =========================

A case whose symbols the side's code lacks, or calls differently (ImportError,
AttributeError, TypeError), is *missing* on that side: ``null`` in the output, the cause on
stderr. Any other error is the side's code failing, and the script exits non-zero.

Each case is warmed up, then timed in :data:`REPEATS` repeats of enough calls to last
:data:`REPEAT_S` (:class:`timeit.Timer`: the garbage collector off while timing); its
figure is the median over the repeats of the seconds per call. stdout gets one JSON
object, ``{case: seconds per call or null}``, in the order above; the whole run takes
about a second, most of it importing the side's code.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import statistics
import sys
import time
import timeit
from array import array
from collections.abc import Callable
from typing import Any

REPEATS = 15  # timed repeats per case (the median is taken)
REPEAT_S = 0.01  # each repeat's length: enough calls to last this long
WARMUP_S = 0.02  # calls before timing (caches, the specialising interpreter)
MISSING = (ImportError, AttributeError, TypeError)  # the side's code lacks the case's symbols

_WORDS = (
    "vector", "search", "index", "latency", "cache", "query", "graph", "recall", "stream",
    "batch", "embedding", "database", "tuning", "memory", "neighbour", "ranking", "filter",
)  # fmt: skip
_TOPICS = ("databases", "machine-learning", "networking", "operations", "search")

Call = Callable[[], object]


def _symbol(module: str, name: str) -> Any:
    """``module.name`` of the side's code (ImportError or AttributeError if it has none)."""
    return getattr(importlib.import_module(module), name)


def _rows(k: int) -> tuple[tuple[int, str, float, str], ...]:
    """``k`` hits as the database returns them: (id, title of ~40 characters, score, topic),
    the same on every run."""
    rng = random.Random(k)
    rows = []
    for i in range(k):
        title = " ".join(rng.choice(_WORDS) for _ in range(6))[:40].rstrip().capitalize()
        score = 0.92 - i * 0.0025 - rng.random() * 0.001
        rows.append((1000 + rng.randrange(1_000_000), title, score, rng.choice(_TOPICS)))
    return tuple(rows)


def _vector() -> bytes:
    """A query embedding as a cache entry keeps it (float32 bytes, ``service.model.DIM``)."""
    dim = int(_symbol("service.model", "DIM"))
    rng = random.Random(dim)
    return array("f", (rng.uniform(-0.1, 0.1) for _ in range(dim))).tobytes()


def _settings() -> Any:
    """The side's settings as its measured service reads them (the same environment)."""
    return _symbol("service.settings", "Settings").from_env()


def search_response() -> Call:
    response = _symbol("service.http.responses", "ORJSONResponse")
    row_dict = _symbol("service.model", "row_dict")
    rows = _rows(10)

    def call() -> object:
        return response({"results": [row_dict(row) for row in rows], "took_ms": 12.345}).body

    return call


def stream_frame() -> Call:
    cached = _symbol("service.cache.results", "CachedResult")
    encode = _symbol("service.stream_search", "encode")
    search_events = _symbol("service.http.stream", "search_events")
    batch_size = _settings().stream_batch_size
    encoded = encode(cached(_rows(200), 0.012, time.time() + 3600, 7, _vector()), batch_size)
    started = time.perf_counter()

    def call() -> object:
        events = search_events(encoded, started=started, write_timeout_s=30.0)
        return b"".join(events.frames)

    return call


def cache_round_trip() -> Call:
    cached = _symbol("service.cache.results", "CachedResult")
    entry = cached(_rows(10), 0.012, 1.9e9, 7, _vector())

    def call() -> object:
        return cached.decode(entry.encode())

    return call


def parse_search() -> Call:
    parse = _symbol("service.http.parsing", "parse_search_body")
    settings = _settings()
    body = {"query": "how to tune an hnsw index", "k": 10, "filter": {"topic": "databases"}}

    def call() -> object:
        return parse(body, settings)

    return call


CASES: dict[str, Callable[[], Call]] = {
    "search_response": search_response,
    "stream_frame": stream_frame,
    "cache_round_trip": cache_round_trip,
    "parse_search": parse_search,
}


def seconds_per_call(call: Call) -> float:
    """The median over :data:`REPEATS` repeats of one call's seconds, after a warm-up."""
    calls, t0 = 0, time.perf_counter()
    while calls < 10 or time.perf_counter() - t0 < WARMUP_S:
        call()
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    number = max(1, math.ceil(REPEAT_S / max(per_call, 1e-9)))
    timer = timeit.Timer(call)
    return statistics.median(timer.timeit(number) / number for _ in range(REPEATS))


def measure(name: str) -> float | None:
    """One case's seconds per call, or None (said on stderr) when the side lacks it."""
    try:
        call = CASES[name]()
        call()
    except MISSING as exc:
        print(f"{name}: missing on this side: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return seconds_per_call(call)


def _side_first_on_path() -> None:
    """The side's worktree (the working directory) first on ``sys.path``, and this script's
    folder off it: its neighbours are the harness's modules, not the side's."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, os.getcwd())


def main() -> None:
    _side_first_on_path()
    print(json.dumps({name: measure(name) for name in CASES}))


if __name__ == "__main__":
    main()
