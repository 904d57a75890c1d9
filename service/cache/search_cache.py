"""The cache one worker holds: the result and embedding layers over one Redis link.

What may be served, and why it is exact, is in the docstring of :mod:`service.cache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from service.cache.embeddings import EmbeddingCache, EmbeddingConfig
from service.cache.generation import NAMESPACE, Generation
from service.cache.lock import FillLock
from service.cache.lookup import CacheLookup, Fetched
from service.cache.lru import LRUCache
from service.cache.redis import CircuitBreaker, RedisLink, connect_client
from service.cache.results import CachedResult, ResultCache, ResultConfig, search_fingerprint
from service.cache.writelog import WriteLog, WriteRecord
from service.metrics import Metrics
from service.model import SearchQuery, Vectors
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Plain values the cache needs, taken from :class:`Settings` once."""

    results: bool
    l1: bool
    l1_size: int
    l1_ttl_s: float
    result_ttl_s: float
    embedding_ttl_s: float
    ttl_jitter: float
    embeddings: bool
    redis_timeout_s: float
    breaker_failures: int
    breaker_cooldown_s: float
    xfetch_beta: float
    lock: bool
    lock_ttl_ms: int
    validate: bool = True
    log_size: int = 10_000
    namespace: str = NAMESPACE

    @classmethod
    def from_settings(cls, s: Settings) -> CacheConfig:
        return cls(
            results=s.cache_enabled and s.redis_url is not None,
            l1=s.l1_enabled,
            l1_size=s.l1_size,
            l1_ttl_s=s.l1_ttl_s,
            result_ttl_s=s.result_ttl_s,
            embedding_ttl_s=s.embedding_ttl_s,
            ttl_jitter=s.ttl_jitter,
            embeddings=s.embed_cache_enabled,
            redis_timeout_s=s.redis_timeout_ms / 1000,
            breaker_failures=s.breaker_failures,
            breaker_cooldown_s=s.breaker_cooldown_s,
            xfetch_beta=s.xfetch_beta,
            lock=s.redis_lock_enabled,
            lock_ttl_ms=s.redis_lock_ttl_ms,
            validate=s.cache_validate,
            log_size=s.cache_log_size,
        )


class SearchCache:
    """Result and embedding cache for one worker process."""

    def __init__(
        self,
        config: CacheConfig,
        client: aioredis.Redis | None,
        metrics: Metrics,
        fingerprint: str,
        model_id: str,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.link = RedisLink(
            client,
            metrics,
            timeout_s=config.redis_timeout_s,
            breaker_failures=config.breaker_failures,
            breaker_cooldown_s=config.breaker_cooldown_s,
        )
        self.results_l1: LRUCache[CachedResult] = LRUCache(
            config.l1_size, lambda: metrics.cache_evictions.labels("result").inc()
        )
        self.embeddings_l1: LRUCache[Vectors] = LRUCache(
            config.l1_size, lambda: metrics.cache_evictions.labels("embedding").inc()
        )
        self.write_log = WriteLog(config.log_size)
        self.results = ResultCache(
            ResultConfig(
                l1=config.l1,
                l1_ttl_s=config.l1_ttl_s,
                result_ttl_s=config.result_ttl_s,
                ttl_jitter=config.ttl_jitter,
                xfetch_beta=config.xfetch_beta,
                validate=config.validate,
                namespace=config.namespace,
            ),
            self.link,
            self.write_log,
            metrics,
            fingerprint,
            self.results_l1,
        )
        self.embeddings = EmbeddingCache(
            EmbeddingConfig(
                enabled=config.embeddings,
                l1=config.l1,
                l1_ttl_s=config.l1_ttl_s,
                ttl_s=config.embedding_ttl_s,
                ttl_jitter=config.ttl_jitter,
                namespace=config.namespace,
            ),
            self.link,
            metrics,
            model_id,
            self.embeddings_l1,
        )
        self.generations = Generation(
            self.link,
            self.write_log,
            metrics,
            enabled=self.results_enabled,
            validate=config.validate,
            log_size=config.log_size,
            namespace=config.namespace,
            on_reset=self.results_l1.clear,
        )
        self._lock = (
            FillLock(self.link, self.results, config.lock_ttl_ms, config.namespace)
            if config.lock
            else None
        )

    @classmethod
    def connect(cls, settings: Settings, metrics: Metrics, model_id: str) -> SearchCache:
        """Build the client without connecting: a Redis that is down must not stop start-up."""
        return cls(
            CacheConfig.from_settings(settings),
            connect_client(settings),
            metrics,
            search_fingerprint(settings, model_id),
            model_id,
        )

    async def aclose(self, grace_s: float = 2.0) -> None:
        await self.link.aclose(grace_s)

    @property
    def redis(self) -> aioredis.Redis | None:
        return self.link.client

    @property
    def breaker(self) -> CircuitBreaker:
        return self.link.breaker

    @property
    def results_enabled(self) -> bool:
        return self.config.results and self.link.client is not None

    # ------------------------------------------------------------------ generation

    async def generation(self) -> int | None:
        """The corpus generation, read from Redis; None: bypass."""
        got = await self.generations.read()
        return None if got is None else got[0]

    async def bump(self, reason: str, records: Sequence[WriteRecord] = ()) -> int | None:
        """Log a committed write and bump the generation; None if that failed (see
        :meth:`service.cache.generation.Generation.bump`)."""
        return await self.generations.bump(reason, records)

    # ------------------------------------------------------------------ lookups

    def result_key(self, query: SearchQuery) -> str:
        return self.results.key(query)

    def at(self, gen: int, query: SearchQuery) -> CacheLookup:
        """The lookup of ``query`` at generation ``gen``."""
        return CacheLookup(
            self.results, self.embeddings, self._lock, query, gen, self.results.key(query)
        )

    async def lookup(
        self, query: SearchQuery, *, result: bool = True, embedding: bool = True
    ) -> CacheLookup | None:
        """Read the generation and return this request's lookup; None: bypass the cache.

        The same round trip brings what the request may need from Redis (:class:`Fetched`):
        ``result``: its result, unless the L1 holds an entry (served if exact at the
        generation); ``embedding``: its query's embedding, unless the embedding L1 holds
        it, when the result may have to be computed (it was asked for, or not wanted).
        """
        if not self.generations.enabled:
            return None
        key = self.results.key(query)
        keys: list[str] = []
        result_asked = result and (not self.config.l1 or self.results_l1.get(key) is None)
        if result_asked:
            keys.append(self.results.redis_key(key))
        emb_key: str | None = None
        if embedding and (result_asked or not result) and self.embeddings.enabled:
            emb_key = self.embeddings.key(query.normalised)
            if self.embeddings.l1_peek(emb_key) is None:
                keys.append(emb_key)
            else:
                emb_key = None
        got = await self.generations.read(keys)
        if got is None:
            return None
        gen, values = got
        fetched = Fetched(
            result_asked,
            values[0] if result_asked else None,
            emb_key,
            values[-1] if emb_key is not None else None,
        )
        return CacheLookup(self.results, self.embeddings, self._lock, query, gen, key, fetched)
