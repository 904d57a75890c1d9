"""The cached result value: its wire format, and what it costs the garbage collector."""

from __future__ import annotations

import gc

from service.cache.lru import LRUCache
from service.cache.results import CachedResult
from service.model import Hit


def _hits(n: int, k: int) -> tuple[Hit, ...]:
    return tuple(Hit(n * 1000 + i, f"title {n} {i}", 0.9 - i / 1000, "t/a") for i in range(k))


def test_a_value_round_trips_its_hits_in_order() -> None:
    hits = _hits(1, 12)
    entry = CachedResult.of(hits, 0.01, 1e12, 7, b"\x00" * 1536)
    back = CachedResult.decode(entry.encode())
    assert back == entry
    assert back.hits == hits  # Hit objects again, best first


def test_cached_results_cost_the_collector_one_object_each_whatever_their_k() -> None:
    """10,000 results of k=10 kept as Hit objects made every full collection walk
    130,000 objects (72 ms here, benchmarks/gc_cached_results.py); as rows the collector
    untracks the hits."""
    lru: LRUCache[CachedResult] = LRUCache(5000)
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2000):
        # made from Hit objects, as a computed result is
        lru.set(f"key {n}", CachedResult.of(_hits(n, 20), 0.01, 1e12, 1, b""), 1e12)
    gc.collect()  # a collection untracks the tuples that hold only numbers and strings
    grown = len(gc.get_objects()) - before
    # per entry: the CachedResult and the LRU's own slot for it; 22+ with Hit objects
    assert grown <= 2000 * 3, grown / 2000
    assert len(lru) == 2000
