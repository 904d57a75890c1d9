"""One request's handle on the result cache: the query, its key and the generation read.

:meth:`service.cache.search_cache.SearchCache.lookup` reads the generation and hands
back a :class:`CacheLookup`; the engine asks it for the L1 and Redis entries, the lock
and the fill, without threading (generation, key, query) through every call.

A ``/v1/search`` miss makes one Redis round trip on its critical path: the generation
read (:meth:`SearchCache.lookup <service.cache.search_cache.SearchCache.lookup>`, shared
by the requests of one loop turn), which also brings back the result and, unless an L1
holds it, the query's embedding: what the computation needs if the result is missing
(:class:`Fetched`, decoded by :meth:`CacheLookup.read`). The database query starts after
that reply, so a result is never stamped with a generation later than its snapshot.
:meth:`CacheLookup.fill` puts the result in the L1 at once and its Redis write (with the
embedding, when the model just made it) goes behind the response, batched
(:meth:`RedisLink.set_behind <service.cache.redis.RedisLink.set_behind>`). A read is one
:class:`~service.cache.redis.RedisLink` call, so a failure bypasses the layers of that
call, is counted once, and never reaches the route.

A request whose L1 entry turned out stale at the generation read (a write changed it)
reads Redis once more (:meth:`CacheLookup.read`): another worker may have filled it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio.lock import Lock

from service.cache.embeddings import EmbeddingCache
from service.cache.lock import FillLock
from service.cache.redis import Skipped, Write
from service.cache.results import CachedResult, ResultCache
from service.model import Row, SearchQuery, Vectors


@dataclass(frozen=True, slots=True, eq=False)
class MissRead:
    """What :meth:`CacheLookup.read` found: the entry to serve, or else the embedding."""

    entry: CachedResult | None  # from Redis, exact at the lookup's generation
    embedding: Vectors | None  # (1, DIM), only without an entry; None: run the model


@dataclass(frozen=True, slots=True, eq=False)
class Fetched:
    """What the generation read brought back for one request (GET replies)."""

    result_asked: bool  # False: the result's L1 held an entry, or none was wanted
    result: Any
    embedding_key: str | None  # asked for with the read; None: not asked
    embedding: Any


@dataclass(frozen=True, slots=True)
class CacheLookup:
    results: ResultCache
    embeddings: EmbeddingCache
    lock: FillLock | None  # None: the cross-worker lock is off
    query: SearchQuery
    gen: int  # the corpus generation read when the request started
    key: str  # the result key (no generation in it)
    fetched: Fetched | None = None  # None: nothing read with the generation

    @property
    def flight_key(self) -> Hashable:
        """Single-flight key: identical queries at one generation share a computation."""
        return (self.gen, self.key)

    @property
    def refresh_key(self) -> Hashable:
        return ("refresh", self.gen, self.key)

    def l1_get(self) -> CachedResult | None:
        return self.results.l1_get(self.gen, self.key, self.query)

    async def redis_get(self) -> CachedResult | None:
        return await self.results.redis_get(self.gen, self.key, self.query)

    async def get(self) -> CachedResult | None:
        """L1, then Redis."""
        return self.l1_get() or await self.redis_get()

    async def read(self) -> MissRead:
        """After an L1 miss: Redis's entry and, unless the embedding L1 has it or the
        embedding cache is off, the query's embedding; from what the generation read
        brought, or else (an L1 entry that turned out stale) in one round trip now.

        The embedding is counted (L1, then Redis) only when there is no entry, as
        :meth:`service.search.SearchEngine.embed_query` counts it: only then is it used.
        """
        emb = self.embeddings
        emb_key = emb.key(self.query.normalised) if emb.enabled else None
        known = emb.l1_peek(emb_key) if emb_key is not None else None
        fetched = self.fetched
        emb_raw: Any = None
        emb_asked = False
        if fetched is not None and fetched.result_asked:
            failed = False
            result_raw = fetched.result
            emb_asked = fetched.embedding_key is not None
            emb_raw = fetched.embedding
        else:
            keys = [self.results.redis_key(self.key)]
            if emb_key is not None and known is None:
                keys.append(emb_key)
            replies = await self.results.link.get_many("get", keys)
            failed = isinstance(replies, Skipped)  # counted by the link: both layers missed
            result_raw = None if isinstance(replies, Skipped) else replies[0]
            if not isinstance(replies, Skipped) and len(replies) == 2:
                emb_asked, emb_raw = True, replies[1]
        if not failed:
            entry = self.results.from_redis(result_raw, self.gen, self.key, self.query)
            if entry is not None:
                return MissRead(entry, None)
        if emb_key is None:
            return MissRead(None, None)
        if emb.config.l1:
            emb.count("l1", known is not None)
        if known is None and emb_asked:
            known = emb.from_redis(emb_key, emb_raw)
        return MissRead(None, known)

    def embedding(self) -> Vectors | None:
        """The query's embedding from its L1 or from the generation read (counted, L1
        then Redis); None: run the model. For a request that reads no result."""
        emb = self.embeddings
        if not emb.enabled:
            return None
        fetched = self.fetched
        key = emb.key(self.query.normalised)
        known = emb.l1_peek(key)
        if emb.config.l1:
            emb.count("l1", known is not None)
        if known is None and fetched is not None and fetched.embedding_key == key:
            known = emb.from_redis(key, fetched.embedding)
        return known

    async def fill(
        self,
        rows: tuple[Row, ...],
        delta_s: float,
        vector: Vectors,
        also: Sequence[Write] = (),
        *,
        wait: bool = False,
    ) -> None:
        """Store the result with ``also`` (e.g. the new embedding of
        :meth:`EmbeddingCache.put_l1`): in the L1 now, in Redis behind (:meth:`store`)."""
        write = self.results.fill_l1(self.gen, self.key, rows, delta_s, vector)
        await self.store([write, *also], wait=wait)

    async def store(self, writes: Sequence[Write], *, wait: bool = False) -> None:
        """Send ``writes`` to Redis behind the response when an L1 holds their values in
        the meantime; before returning with ``wait`` (the holder of the cross-worker lock,
        whose waiters look in Redis) or without an L1 (a request that starts after this
        one must find them)."""
        link = self.results.link
        if self.results.config.l1 and not wait:
            link.set_behind(writes)
        else:
            await link.set_many(writes)

    def should_refresh(self, entry: CachedResult) -> bool:
        return self.results.should_refresh(entry)

    async def try_lock(self) -> Lock | Literal[False] | None:
        """The held lock: this worker computes, then :meth:`unlock`; False: another
        worker does; None: no lock (off, or Redis unusable)."""
        if self.lock is None:
            return None
        return await self.lock.try_lock(self.gen, self.key)

    async def unlock(self, held: Lock) -> None:
        assert self.lock is not None, "unlock of a lock that try_lock never handed out"
        await self.lock.unlock(held)

    async def wait_for_fill(self) -> CachedResult | None:
        if self.lock is None:
            return None
        return await self.lock.wait_for_fill(self.gen, self.key, self.query)
