"""What a stream sends: a search result fetched whole, encoded once, shared by identical streams.

A stream holds no database connection while it sends (a slow reader may take minutes, and
a few hundred of them would empty the pool):

1. **fetch, release, then send**: the search runs as one statement (``Database.search``)
   and its connection goes back to the pool before the first byte is sent;
2. **encoded once**: the hits of each batch become JSON bytes once per result, and every
   stream of that result sends the same bytes (only the small event envelope is per
   stream, in :mod:`service.http.stream`);
3. **coalesced**: identical streams arriving together share one computation (single-flight
   on the result key and generation), and only that computation holds a unit of the
   in-flight bound (:mod:`service.limits`), queued for while the queue's estimated work
   allows: the streams waiting for it are idle;
4. **cached within a memory budget**: encoded results live in a per-worker LRU bounded by
   bytes (``SEARCH_STREAM_CACHE_MB``), whatever their k, validated against the write log
   exactly like the result cache's entries (:meth:`ResultCache.current`). Results with
   ``k <= SEARCH_STREAM_CACHE_MAX_K`` also fill the shared result cache (L1 + Redis), and
   a stream looks there too (what ``/v1/search`` or another worker computed).

A miss makes the one Redis round trip of a ``/v1/search`` miss on its critical path: the
generation read, which brings the shared result and the query's embedding
(:meth:`SearchCache.lookup <service.cache.search_cache.SearchCache.lookup>`); the result
and a new embedding go to Redis behind the stream (:meth:`CacheLookup.fill`). A large-k
miss (``k > SEARCH_STREAM_CACHE_MAX_K``) reads no shared result, since none is stored:
only the embedding comes with the generation. A stream cache entry needs only the
generation, to be validated. The in-flight unit covers the model and the database only.

Without a result cache (``SEARCH_CACHE_ENABLED=0`` or no Redis) streams still coalesce
(keyed without a generation) but nothing is kept.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

import numpy as np
import orjson

from service.cache.lookup import CacheLookup
from service.cache.results import CachedResult, jittered
from service.coalesce import SingleFlight
from service.limits import Bound
from service.metrics import Metrics
from service.model import DIM, Row, SearchQuery, Vectors
from service.search import SearchEngine

ENTRY_OVERHEAD_BYTES = 512  # the entry, its tuples and the LRU's slot, roughly


@dataclass(frozen=True, slots=True)
class EncodedResult:
    """A result ready to stream: the hits (to validate it) and each batch as JSON bytes."""

    result: CachedResult
    batches: tuple[bytes, ...]  # one JSON array of hit objects per batch
    nbytes: int  # what the entry costs the memory budget (estimate, see hit_bytes)

    @property
    def count(self) -> int:
        return len(self.result.rows)


def hit_bytes(row: Row) -> int:
    return sys.getsizeof(row) + sys.getsizeof(row[1]) + sys.getsizeof(row[2])


def encode(result: CachedResult, batch_size: int) -> EncodedResult:
    """Each batch of ``batch_size`` hits as one orjson array (dataclasses encode natively)."""
    assert batch_size >= 1, f"batch_size must be >= 1, got {batch_size}"
    hits = result.hits
    batches = tuple(orjson.dumps(hits[i : i + batch_size]) for i in range(0, len(hits), batch_size))
    size = ENTRY_OVERHEAD_BYTES + len(result.vector)
    size += sum(len(b) for b in batches) + sum(hit_bytes(row) for row in result.rows)
    return EncodedResult(result, batches, size)


class StreamCache:
    """Encoded results by result key: an LRU bounded by bytes, entries also expiring."""

    def __init__(
        self,
        budget_bytes: int,
        ttl_s: float,
        *,
        on_evict: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,  # wall clock, as CachedResult.expires_at
    ) -> None:
        assert budget_bytes >= 0, f"budget_bytes must be >= 0, got {budget_bytes}"
        assert ttl_s > 0, f"ttl_s must be > 0, got {ttl_s}"
        self.budget = budget_bytes
        self.ttl_s = ttl_s
        self.bytes = 0
        self._data: OrderedDict[str, tuple[float, EncodedResult]] = OrderedDict()
        self._on_evict = on_evict
        self._clock = clock

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> EncodedResult | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: str, value: EncodedResult) -> bool:
        """Keep ``value`` (evicting the least recently used); False: larger than the budget."""
        if key in self._data:
            self._drop(key)
        if value.nbytes > self.budget:
            return False
        expires = min(value.result.expires_at, self._clock() + self.ttl_s)
        self._data[key] = (expires, value)
        self.bytes += value.nbytes
        while self.bytes > self.budget:
            oldest = next(iter(self._data))
            self._drop(oldest)
            if self._on_evict is not None:
                self._on_evict()
        return True

    def discard(self, key: str) -> None:
        if key in self._data:
            self._drop(key)

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= value.nbytes


class StreamSearch:
    """The encoded result a stream of ``query`` sends (see the module docstring)."""

    def __init__(
        self,
        engine: SearchEngine,
        *,
        batch_size: int,
        cache_bytes: int,
        result_ttl_s: float,
        ttl_jitter: float,
        l1_ttl_s: float,
        fill_max_k: int,
        query_bound: Bound,
        max_queue_wait_s: float,
        metrics: Metrics | None = None,
        coalesce: bool = True,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.result_ttl_s = result_ttl_s
        self.ttl_jitter = ttl_jitter
        self.fill_max_k = fill_max_k
        self.query_bound = query_bound
        self.max_queue_wait_s = max_queue_wait_s  # service.limits: the queue of work's bound
        self.metrics = metrics
        on_evict = metrics.cache_evictions.labels("stream").inc if metrics is not None else None
        self.cache = StreamCache(cache_bytes, l1_ttl_s, on_evict=on_evict)
        self.flights: SingleFlight[EncodedResult] = SingleFlight(enabled=coalesce)

    async def result(self, query: SearchQuery) -> EncodedResult:
        cache = self.engine.cache
        lookup = None
        if cache is not None:
            # an entry of the stream cache needs only the generation to be validated;
            # otherwise the read brings the shared result (if one may be stored for
            # this k) and the embedding
            held = self.cache.budget > 0 and self.cache.get(cache.result_key(query)) is not None
            shared = not held and query.k <= self.fill_max_k
            lookup = await cache.lookup(query, result=shared, embedding=not held)
        key: Hashable
        if lookup is None:
            key = ("bypass", query.normalised, query.k, query.topic)
        else:
            local = self._local(lookup)
            self._count(local is not None)
            if local is not None:
                return local
            key = lookup.flight_key
        encoded, joined = await self.flights.do(key, lambda: self._compute(query, lookup))
        if joined and self.metrics is not None:
            self.metrics.coalesced.inc()
        return encoded

    def _local(self, lookup: CacheLookup) -> EncodedResult | None:
        """The stream cache's entry if it is exact at the lookup's generation."""
        if not self.cache.budget:
            return None
        found = self.cache.get(lookup.key)
        if found is None:
            return None
        current, restamped = lookup.results.current(found.result, lookup.gen, lookup.query)
        if current is None:
            self.cache.discard(lookup.key)
            return None
        if restamped:
            found = replace(found, result=current)
            self.cache.put(lookup.key, found)
        return found

    async def _compute(self, query: SearchQuery, lookup: CacheLookup | None) -> EncodedResult:
        if lookup is None:
            return self._encode(*await self._search(query), gen=0)
        shared = lookup.l1_get()
        if shared is not None:
            return self._keep(lookup, encode(shared, self.batch_size))
        hold = self.query_bound.hold_queued(self.max_queue_wait_s)
        if query.k > self.fill_max_k:
            # no shared result for this k (Redis holds only what a fill put there): the
            # embedding came with the generation read, or the model makes it
            done = await self.engine.compute_miss(lookup, lookup.embedding(), hold)
            encoded = self._encode(done.rows, done.seconds, done.vectors, gen=lookup.gen)
            await lookup.store(done.writes)
            return self._keep(lookup, encoded)
        # as /v1/search: what /v1/search or another worker computed and the embedding,
        # read with the generation; a miss's result and new embedding written behind
        read = await lookup.read()
        if read.entry is not None:
            return self._keep(lookup, encode(read.entry, self.batch_size))
        done = await self.engine.compute_miss(lookup, read.embedding, hold)
        encoded = self._encode(done.rows, done.seconds, done.vectors, gen=lookup.gen)
        await lookup.fill(done.rows, done.seconds, done.vectors[0], list(done.writes))
        return self._keep(lookup, encoded)

    async def _search(self, query: SearchQuery) -> tuple[tuple[Row, ...], float, Vectors]:
        """Without a result cache: embed (``embed_query``: the embedding cache alone) and
        search, holding a unit of the in-flight bound."""
        async with self.query_bound.hold_queued(self.max_queue_wait_s):
            start = time.perf_counter()
            vector = await self.engine.embed_query(query)
            rows = await self.engine.db.search(vector[0], query.k, query.topic)
            return rows, time.perf_counter() - start, vector

    def _encode(
        self, rows: tuple[Row, ...], delta_s: float, vector: Vectors, *, gen: int
    ) -> EncodedResult:
        raw = np.ascontiguousarray(vector[0], dtype=np.float32).reshape(DIM).tobytes()
        expires = time.time() + jittered(self.result_ttl_s, self.ttl_jitter)
        return encode(CachedResult(rows, delta_s, expires, gen, raw), self.batch_size)

    def _keep(self, lookup: CacheLookup, encoded: EncodedResult) -> EncodedResult:
        if self.cache.budget:
            self.cache.put(lookup.key, encoded)
            if self.metrics is not None:
                self.metrics.stream_cache_bytes.set(self.cache.bytes)
        return encoded

    def _count(self, hit: bool) -> None:
        if self.metrics is None:
            return
        counter = self.metrics.cache_hits if hit else self.metrics.cache_misses
        counter.labels("stream", "l1").inc()
