"""The search flow: validate -> cache lookup -> single-flight -> embed -> database -> fill.

Routes call :class:`SearchEngine`; it owns the order of the steps so that each step can
be switched by a setting and measured:

==================  ===============================  ==========================================
step                setting                          off means
==================  ===============================  ==========================================
result cache        SEARCH_CACHE_ENABLED, REDIS_URL  every request embeds and searches
L1 (in-process)     SEARCH_L1_ENABLED                every lookup asks Redis
single-flight       SEARCH_COALESCE_ENABLED          identical concurrent requests each compute
embedding cache     SEARCH_EMBED_CACHE_ENABLED       every miss runs the model
micro-batching      SEARCH_BATCH_ENABLED             one model call per query
search batching     SEARCH_DB_BATCH_ENABLED          one statement per database search
early refresh       SEARCH_XFETCH_BETA=0             hot keys are recomputed only once expired
cross-worker lock   SEARCH_REDIS_LOCK_ENABLED        each worker computes a cold key itself
delta validation    SEARCH_CACHE_VALIDATE            every write invalidates every result
==================  ===============================  ==========================================

The generation read brings the Redis entry and the query's embedding with it
(:meth:`SearchCache.lookup <service.cache.search_cache.SearchCache.lookup>`: one round
trip, shared by the requests of one loop turn), so a miss has one Redis round trip on
its critical path; the database query starts after its reply. A fill puts the result in
the L1 before the flight ends, and its Redis write goes behind the response: a request
of this worker that arrives after a flight ended finds the L1 entry (no second
computation), another worker finds the Redis copy a few milliseconds later. Without an
L1 the write is sent before the flight ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, TypeAlias

from service.cache.lookup import CacheLookup, MissRead
from service.cache.redis import Write
from service.cache.results import CachedResult
from service.cache.search_cache import SearchCache
from service.cache.writelog import WriteRecord
from service.coalesce import SingleFlight
from service.db.batch import SearchBatcher
from service.db.database import Database, Explained
from service.embed.protocol import Embedder
from service.metrics import Metrics
from service.model import Hit, NewDocument, Row, SearchQuery, Vectors, hits_of

Source = Literal["l1", "redis", "computed", "bypass"]


@dataclass(frozen=True, slots=True)
class SearchResult:
    rows: tuple[Row, ...]  # the hits, best first, as the caches keep them (service.model.Row)
    source: Source = "computed"

    @property
    def hits(self) -> tuple[Hit, ...]:
        return hits_of(self.rows)


@dataclass(frozen=True, slots=True)
class Computed:
    """A miss computed: its hits (rows), the seconds it took, the query's vector, what to
    write."""

    rows: tuple[Row, ...]
    seconds: float
    vectors: Vectors
    writes: tuple[Write, ...]


_Compute: TypeAlias = Callable[[], Awaitable[SearchResult]]


class SearchEngine:
    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        *,
        cache: SearchCache | None = None,
        metrics: Metrics | None = None,
        coalesce: bool = True,
        db_batch: bool = True,
    ) -> None:
        self.db = db
        self.searches: SearchBatcher | Database = SearchBatcher(db) if db_batch else db
        self.embedder = embedder
        self.cache = cache
        self.metrics = metrics
        self.flights: SingleFlight[SearchResult] = SingleFlight(
            enabled=coalesce,
            on_done=metrics.coalesce_waiters.observe if metrics is not None else None,
        )
        self._background: set[asyncio.Task[object]] = set()

    # ------------------------------------------------------------------ embedding

    async def embed_query(self, query: SearchQuery) -> Vectors:
        # Both embedders ignore case and extra whitespace, so the normalised text gives
        # the same vector and one cache entry serves every spelling of the query.
        text = query.normalised
        if self.cache is not None:
            cached = await self.cache.embeddings.get(text)
            if cached is not None:
                return cached
        vectors = await self.embedder.embed([text])
        if self.cache is not None:
            await self.cache.embeddings.put(text, vectors[0])
        return vectors

    async def _compute(self, query: SearchQuery) -> tuple[tuple[Row, ...], float, Vectors]:
        """Hits, the time they took and the query vector (the cache validates with it)."""
        start = time.perf_counter()
        vector = await self.embed_query(query)
        rows = await self.searches.search(vector[0], query.k, query.topic)
        return rows, time.perf_counter() - start, vector[0]

    # ------------------------------------------------------------------ search

    async def search(self, query: SearchQuery) -> SearchResult:
        result = await self._search(query)
        if self.metrics is not None:
            self.metrics.result_source.labels(result.source).inc()
        return result

    async def _search(self, query: SearchQuery) -> SearchResult:
        lookup = await self.cache.lookup(query) if self.cache is not None else None
        if lookup is None:
            key = ("bypass", query.normalised, query.k, query.topic)
            return await self._flight(key, lambda: self._compute_only(query))
        entry = lookup.l1_get()
        if entry is not None:
            self._maybe_refresh(lookup, entry)
            return SearchResult(entry.rows, "l1")
        return await self._flight(lookup.flight_key, lambda: self._lookup(lookup))

    async def _flight(self, key: Hashable, compute: _Compute) -> SearchResult:
        result, joined = await self.flights.do(key, compute)
        if joined and self.metrics is not None:
            self.metrics.coalesced.inc()
        return result

    async def _compute_only(self, query: SearchQuery) -> SearchResult:
        rows, _, _ = await self._compute(query)
        return SearchResult(rows, "bypass")

    async def _lookup(self, lookup: CacheLookup) -> SearchResult:
        read = await lookup.read()
        if read.entry is not None:
            self._maybe_refresh(lookup, read.entry)
            return SearchResult(read.entry.rows, "redis")
        held = await lookup.try_lock()  # None: the lock is off or Redis unusable
        if held is False:
            if self.metrics is not None:
                self.metrics.redis_lock.labels("waited").inc()
            entry = await lookup.wait_for_fill()
            if entry is not None:
                return SearchResult(entry.rows, "redis")
        elif held is not None:
            if self.metrics is not None:
                self.metrics.redis_lock.labels("acquired").inc()
            try:
                # the workers waiting on the lock look in Redis: write before unlocking
                return await self._compute_and_fill(lookup, read, wait=True)
            finally:
                await lookup.unlock(held)
        return await self._compute_and_fill(lookup, read)

    async def _compute_and_fill(
        self, lookup: CacheLookup, read: MissRead | None = None, *, wait: bool = False
    ) -> SearchResult:
        """Compute and fill (embedding and result in one write, behind the answer unless
        ``wait``); ``read``: the miss read, which already looked for the embedding (None:
        a refresh, which looks now)."""
        if read is not None:
            vectors = read.embedding
        else:
            vectors = await lookup.embeddings.get(lookup.query.normalised)
        done = await self.compute_miss(lookup, vectors)
        await lookup.fill(done.rows, done.seconds, done.vectors[0], list(done.writes), wait=wait)
        return SearchResult(done.rows, "computed")

    async def compute_miss(
        self,
        lookup: CacheLookup,
        vectors: Vectors | None,
        hold: AbstractAsyncContextManager[object] | None = None,
    ) -> Computed:
        """Embed (unless ``vectors``, the cached embedding, is given) and search, inside
        ``hold`` (a stream's unit of the in-flight bound) and timed; the new embedding
        goes to L1 at once (a concurrent query of this text with another k finds it) and
        is handed back to be written to Redis with the result."""
        query = lookup.query
        writes: list[Write] = []
        async with hold if hold is not None else contextlib.nullcontext():
            start = time.perf_counter()
            if vectors is None:
                vectors = await self.embedder.embed([query.normalised])
                new = lookup.embeddings.put_l1(query.normalised, vectors[0])
                if new is not None:
                    writes.append(new)
            rows = await self.searches.search(vectors[0], query.k, query.topic)
            seconds = time.perf_counter() - start
        return Computed(rows, seconds, vectors, tuple(writes))

    def _maybe_refresh(self, lookup: CacheLookup, entry: CachedResult) -> None:
        """XFetch: start one early recomputation in the background; serve the hit now."""
        if not lookup.should_refresh(entry):
            return
        key = lookup.refresh_key
        if self.flights.enabled and key in self.flights:
            return  # a refresh of this key is already running in this process
        if self.metrics is not None:
            self.metrics.early_refreshes.inc()
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            self.flights.do(key, lambda: self._compute_and_fill(lookup))
        )
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # a failed refresh leaves the old entry to expire; nothing to do

    async def aclose(self, grace_s: float = 5.0) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=grace_s)

    # ------------------------------------------------------------------ explain

    async def explain(self, query: SearchQuery) -> Explained:
        """EXPLAIN ANALYZE of the database search this query runs on a cache miss."""
        vector = await self.embed_query(query)
        return await self.db.explain(vector[0], query.k, query.topic)

    # ------------------------------------------------------------------ writes

    async def add_documents(self, docs: Sequence[NewDocument]) -> list[int]:
        vectors = await self.embedder.embed([f"{d.title}. {d.body}" for d in docs])
        ids = await self.db.insert_documents([(d.title, d.body, d.topic) for d in docs], vectors)
        # One record per document; should the counts ever differ, a reset (never a 500
        # after the commit, which would leave the write out of the log).
        records: list[WriteRecord] = []
        if len(ids) == len(docs) == len(vectors):
            records = [
                WriteRecord.insert(i, d.topic, v)
                for i, d, v in zip(ids, docs, vectors, strict=True)
            ]
        await self.invalidate("write", records)
        return ids

    async def delete_document(self, doc_id: int) -> bool:
        deleted = await self.db.delete_document(doc_id)
        if deleted:
            await self.invalidate("write", [WriteRecord("delete", doc_id)])
        return deleted

    async def invalidate(self, reason: str, records: Sequence[WriteRecord] = ()) -> int | None:
        """Log the write and bump the corpus generation (after the write committed, before
        answering); no records: a ``reset`` that no cached result survives."""
        if self.cache is None:
            return None
        return await self.cache.bump(reason, records)
