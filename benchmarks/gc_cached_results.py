"""What a full L1 costs the garbage collector: cached results as rows against Hit objects.

``python -m benchmarks.gc_cached_results [--entries 10000] [--k 10] [--rounds 5]`` fills an
:class:`~service.cache.lru.LRUCache` with ``entries`` results of ``k`` hits the way the
service's L1 keeps them (:class:`~service.cache.results.CachedResult`, its hits as plain
tuples), and another with the same results kept as :class:`~service.model.Hit` objects
(one tracked object per hit: the alternative measured), one after the other in this
process. For each it prints the objects the collector tracks and the time of a full
collection (``gc.collect()``; median and range of ``rounds``), as one JSON line per shape.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from dataclasses import dataclass

from service.cache.lru import LRUCache
from service.cache.results import CachedResult
from service.model import Hit


@dataclass(frozen=True, slots=True)
class HitObjectsResult:
    """The alternative value shape: the same fields, the hits as Hit objects."""

    hits: tuple[Hit, ...]
    delta_s: float
    expires_at: float
    gen: int
    vector: bytes


def _hits(n: int, k: int) -> list[Hit]:
    return [Hit(n * k + i, f"document {n} {i}", 0.9 - i / 1000, "topic/sub") for i in range(k)]


def measure(shape: str, entries: int, k: int, rounds: int) -> dict[str, object]:
    gc.collect()
    baseline = len(gc.get_objects())
    l1: LRUCache[object] = LRUCache(entries)
    vector = bytes(1536)
    for n in range(entries):
        hits = _hits(n, k)
        value: object
        if shape == "rows":
            value = CachedResult.of(hits, 0.01, 1e12, 1, vector)
        else:
            value = HitObjectsResult(tuple(hits), 0.01, 1e12, 1, vector)
        l1.set(f"key {n}", value, 1e12)
    gc.collect()  # the first collection untracks the tuples of numbers and strings
    tracked = len(gc.get_objects()) - baseline
    pauses = []
    for _ in range(rounds):
        start = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - start) * 1000)
    del l1
    gc.collect()
    return {
        "shape": shape,
        "entries": entries,
        "k": k,
        "tracked_objects": tracked,
        "full_collection_ms": {
            "median": round(statistics.median(pauses), 2),
            "low": round(min(pauses), 2),
            "high": round(max(pauses), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.entries < 1 or args.k < 1 or args.rounds < 1:
        raise SystemExit("--entries, --k and --rounds must be >= 1")
    gc.freeze()  # as the service does after start-up: the imports are not counted
    for shape in ("rows", "hit objects"):
        print(json.dumps(measure(shape, args.entries, args.k, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
