"""Query-result and query-embedding cache: an in-process L1 in front of Valkey/Redis.

Correctness rests on the *corpus generation*, a counter in Redis that every write
(``POST``/``DELETE /v1/documents``, the bulk loader, ``POST /v1/cache/invalidate``)
increments after its transaction commits and before it answers. Every search reads the
generation from Redis first, and the generation is part of every result key (Redis and
L1) and of the single-flight key. A search that starts after a write returned therefore
reads the new generation and can only meet entries computed by searches that themselves
started after the commit. Stale keys are never deleted: nobody asks for them again and
they age out by TTL (or LRU).

Decision table: what may be served, per situation

=============================  ================  ==============  ==========================
situation                      result L1         result Redis    embeddings (L1 / Redis)
=============================  ================  ==============  ==========================
Redis reachable                yes, keyed by gen  yes, keyed by  yes / yes
                               read per request   gen
no REDIS_URL                   no: no shared gen  no              yes / no
                               to key it with
generation read fails or the   no (bypass: the    no              yes / no
breaker is open                gen is unknown)
this worker's own INCR failed  no, until a retry  no              yes / no
(pending invalidation)         of the INCR works
SEARCH_CACHE_ENABLED=0         no                 no              per SEARCH_EMBED_CACHE_*
=============================  ================  ==============  ==========================

Embeddings are a pure function of (model id, normalised text), so they need no
generation and the L1 may serve them even with Redis down. A generation key that is
missing (Valkey restarted empty, or evicted) is re-created from a random 52-bit number,
never from 0, so that an L1 entry from an earlier life of the server cannot match again.
Known window: if another worker's INCR fails (Redis unreachable just then) and Redis
comes back without having restarted, *other* workers may serve pre-write results from
Redis until that worker's retry succeeds (its next request) or the TTL ends.

Values carry their compute time (delta) and logical expiry for XFetch (Vattani, Chierichetti,
Lowenstein, VLDB 2015): a hit at time ``now`` is recomputed early when
``now - delta * beta * ln(rand()) >= expiry``, so the busier and slower a key, the
earlier one request (per process, through single-flight) refreshes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.api import SearchQuery
from service.breaker import CircuitBreaker
from service.db import Hit
from service.embed import DIM, Vectors
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.cache")

V = TypeVar("V")
T = TypeVar("T")
VALUE_VERSION = 1
NAMESPACE = "sc1"  # key prefix; change it when the value format changes
REDIS_MAX_CONNECTIONS = 32

# Bump the generation atomically; a missing key starts from a random number (see above).
_BUMP_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


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
        )


def search_fingerprint(s: Settings, model_id: str) -> str:
    """Everything besides the query that decides a result: model, index and its knobs."""
    parts: list[Any] = [model_id, s.index_mode, s.vector_type]
    if s.index_mode == "hnsw":
        parts += [s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search]
    elif s.index_mode == "ivfflat":
        parts += [s.ivfflat_lists, s.ivfflat_probes]
    return hashlib.blake2b(orjson.dumps(parts), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedResult:
    hits: tuple[Hit, ...]
    delta_s: float  # time the computation took (XFetch)
    expires_at: float  # wall clock, shared by every process

    def encode(self) -> bytes:
        rows = [[h.id, h.title, h.score, h.topic] for h in self.hits]
        return orjson.dumps(
            {"v": VALUE_VERSION, "d": self.delta_s, "e": self.expires_at, "h": rows}
        )

    @classmethod
    def decode(cls, raw: bytes) -> CachedResult:
        obj = orjson.loads(raw)
        if not isinstance(obj, dict) or obj.get("v") != VALUE_VERSION:
            raise ValueError("unknown cache value version")
        hits = tuple(Hit(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in obj["h"])
        return cls(hits, float(obj["d"]), float(obj["e"]))


class LRUCache(Generic[V]):
    """Bounded LRU whose entries also expire; ``on_evict`` counts size evictions."""

    def __init__(
        self,
        size: int,
        on_evict: Callable[[], None] | None = None,
        *,
        clock: Callable[[], float] = time.time,  # wall clock: expiries are shared via Redis
    ) -> None:
        assert size >= 1, f"LRU size must be >= 1, got {size}"
        self.size = size
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._on_evict = on_evict
        self._clock = clock

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, now: float | None = None) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= (self._clock() if now is None else now):
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def set(self, key: Hashable, value: V, expires_at: float) -> None:
        self._data[key] = (expires_at, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict()

    def clear(self) -> None:
        self._data.clear()


class _Skipped:
    """Marker: the Redis call was not made or failed; treat as a miss."""


SKIPPED = _Skipped()


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
        self.redis = client
        self.metrics = metrics
        self.fingerprint = fingerprint
        self.model_id = model_id
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_cooldown_s, on_change=metrics.on_breaker
        )
        metrics.on_breaker("closed")
        self.results_l1: LRUCache[CachedResult] = LRUCache(
            config.l1_size, lambda: metrics.cache_evictions.labels("result").inc()
        )
        self.embeddings_l1: LRUCache[Vectors] = LRUCache(
            config.l1_size, lambda: metrics.cache_evictions.labels("embedding").inc()
        )
        self._gen_key = f"{config.namespace}:gen"
        self._gen_pending: asyncio.Future[int | None] | None = None
        self._gen_tasks: set[asyncio.Task[None]] = set()
        self._pending_bump = False
        self._bump_script = client.register_script(_BUMP_LUA) if client is not None else None

    @classmethod
    def connect(cls, settings: Settings, metrics: Metrics, model_id: str) -> SearchCache:
        """Build the client without connecting: a Redis that is down must not stop start-up."""
        client = None
        if settings.redis_url and (settings.cache_enabled or settings.embed_cache_enabled):
            timeout = settings.redis_timeout_ms / 1000
            # A bounded pool: a burst of requests must not open one connection each.
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=REDIS_MAX_CONNECTIONS,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # the breaker decides about retrying
                health_check_interval=0,
            )
            client = aioredis.Redis(connection_pool=pool)
        return cls(
            CacheConfig.from_settings(settings),
            client,
            metrics,
            search_fingerprint(settings, model_id),
            model_id,
        )

    async def aclose(self, grace_s: float = 2.0) -> None:
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.aclose(), grace_s)
            except (TimeoutError, OSError, aioredis.RedisError):
                log.warning("closing the Redis client timed out or failed")

    @property
    def results_enabled(self) -> bool:
        return self.config.results and self.redis is not None

    # ------------------------------------------------------------------ redis calls

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T | _Skipped:
        """One Redis call with a hard timeout; errors open the breaker, never propagate."""
        if self.redis is None:
            return SKIPPED
        if not self.breaker.allow():
            self.metrics.redis_skipped.inc()
            return SKIPPED
        try:
            result = await asyncio.wait_for(fn(), self.config.redis_timeout_s)
        except Exception as exc:  # any failure of the cache becomes a miss, never a 500
            self.breaker.failure()
            self.metrics.redis_errors.labels(op).inc()
            log.debug("redis %s failed: %r", op, exc)
            return SKIPPED
        self.breaker.success()
        return result

    def _ttl(self, base: float) -> float:
        return base * (1.0 + random.random() * self.config.ttl_jitter)

    # ------------------------------------------------------------------ generation

    async def generation(self) -> int | None:
        """The corpus generation, read from Redis for every request; None: bypass.

        Concurrent requests share one read, but only a read not yet sent when they
        joined it: a request that starts after a write returned must see its INCR, and
        a GET already on the wire may have been answered before that INCR.
        """
        if not self.results_enabled:
            return None
        if self._pending_bump and await self.bump("retry") is None:
            return None
        fut = self._gen_pending
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._gen_pending = fut
            loop.call_soon(self._send_generation_read, fut)
        return await asyncio.shield(fut)

    def _send_generation_read(self, fut: asyncio.Future[int | None]) -> None:
        if self._gen_pending is fut:
            self._gen_pending = None  # later requests get a read of their own
        task = asyncio.get_running_loop().create_task(self._read_generation(fut))
        self._gen_tasks.add(task)
        task.add_done_callback(self._gen_tasks.discard)

    async def _read_generation(self, fut: asyncio.Future[int | None]) -> None:
        try:
            value = await self._read_generation_now()
        except BaseException as exc:  # never leave the waiters hanging
            if not fut.done():
                fut.set_result(None)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not fut.done():
            fut.set_result(value)

    async def _read_generation_now(self) -> int | None:
        assert self.redis is not None, "results_enabled implies a client"
        client = self.redis
        raw = await self._call("gen", lambda: client.get(self._gen_key))
        if isinstance(raw, _Skipped):
            return None
        if raw is None:
            start = str(secrets.randbits(52))
            raw = await self._call("gen", lambda: _set_nx_get(client, self._gen_key, start))
            if isinstance(raw, _Skipped) or raw is None:
                return None
        return int(raw)

    async def bump(self, reason: str) -> int | None:
        """INCR the generation after a write; on failure remember to retry before serving."""
        if self.redis is None or self._bump_script is None:
            return None
        script = self._bump_script
        start = str(secrets.randbits(52))
        # A bump must not be skipped by an open breaker: try it even then.
        try:
            value = await asyncio.wait_for(
                script(keys=[self._gen_key], args=[start]), self.config.redis_timeout_s * 4
            )
        except Exception as exc:  # see _call: never fail a write because of the cache
            self.metrics.redis_errors.labels("bump").inc()
            self.breaker.failure()
            self._pending_bump = True
            log.warning(
                "could not bump the corpus generation (%r); results bypass the cache "
                "in this worker until it succeeds",
                exc,
            )
            return None
        self._pending_bump = False
        self.breaker.success()
        self.results_l1.clear()  # dead entries of the old generation: free the memory
        self.metrics.cache_invalidations.labels(reason).inc()
        return int(value)

    # ------------------------------------------------------------------ results

    def result_key(self, query: SearchQuery) -> str:
        material = orjson.dumps([self.fingerprint, query.normalised, query.k, query.topic])
        return hashlib.blake2b(material, digest_size=16).hexdigest()

    def _redis_result_key(self, gen: int, key: str) -> str:
        return f"{self.config.namespace}:r:{gen}:{key}"

    def l1_get(self, gen: int, key: str) -> CachedResult | None:
        if not self.config.l1:
            return None
        entry = self.results_l1.get((gen, key))
        self._count("result", "l1", entry is not None)
        return entry

    async def redis_get(self, gen: int, key: str) -> CachedResult | None:
        assert self.redis is not None, "redis_get needs a client"
        client = self.redis
        raw = await self._call("get", lambda: client.get(self._redis_result_key(gen, key)))
        if isinstance(raw, _Skipped):
            return None
        entry = None
        if isinstance(raw, bytes):
            try:
                entry = CachedResult.decode(raw)
            except (ValueError, KeyError, IndexError, TypeError):
                self.metrics.redis_errors.labels("decode").inc()
        self._count("result", "redis", entry is not None)
        if entry is not None:
            self._l1_put(gen, key, entry)
        return entry

    async def fill(self, gen: int, key: str, hits: tuple[Hit, ...], delta_s: float) -> None:
        ttl = self._ttl(self.config.result_ttl_s)
        entry = CachedResult(hits, delta_s, time.time() + ttl)
        self._l1_put(gen, key, entry)
        assert self.redis is not None, "fill needs a client"
        client = self.redis
        payload = entry.encode()
        await self._call(
            "set",
            lambda: client.set(
                self._redis_result_key(gen, key), payload, px=max(1, int(ttl * 1000))
            ),
        )

    def _l1_put(self, gen: int, key: str, entry: CachedResult) -> None:
        if self.config.l1:
            expires = min(entry.expires_at, time.time() + self.config.l1_ttl_s)
            self.results_l1.set((gen, key), entry, expires)

    def should_refresh(self, entry: CachedResult) -> bool:
        """XFetch: recompute before expiry with a probability that grows towards it."""
        beta = self.config.xfetch_beta
        if beta <= 0:
            return False
        draw = -math.log(1.0 - random.random())  # Exp(1); 1 - random() is in (0, 1]
        return time.time() + entry.delta_s * beta * draw >= entry.expires_at

    # ------------------------------------------------------------------ cross-worker lock

    async def try_lock(self, gen: int, key: str) -> bool | None:
        """True: this worker computes; False: another does; None: Redis unusable."""
        assert self.redis is not None, "try_lock needs a client"
        client = self.redis
        lock_key = self._redis_result_key(gen, key) + ":lock"
        got = await self._call(
            "lock", lambda: client.set(lock_key, b"1", nx=True, px=self.config.lock_ttl_ms)
        )
        if isinstance(got, _Skipped):
            return None
        return bool(got)

    async def unlock(self, gen: int, key: str) -> None:
        assert self.redis is not None, "unlock needs a client"
        client = self.redis
        await self._call(
            "unlock", lambda: client.delete(self._redis_result_key(gen, key) + ":lock")
        )

    async def wait_for_fill(self, gen: int, key: str) -> CachedResult | None:
        """Poll for the value another worker is computing, until its lock expires."""
        deadline = time.monotonic() + self.config.lock_ttl_ms / 1000
        delay = 0.002
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
            entry = await self.redis_get(gen, key)
            if entry is not None:
                return entry
        return None

    # ------------------------------------------------------------------ embeddings

    def _embedding_key(self, text: str) -> str:
        digest = hashlib.blake2b(f"{self.model_id}\x00{text}".encode(), digest_size=16)
        return f"{self.config.namespace}:e:{digest.hexdigest()}"

    async def get_embedding(self, text: str) -> Vectors | None:
        """A cached (1, DIM) vector for the normalised text, from L1 then Redis."""
        if not self.config.embeddings:
            return None
        key = self._embedding_key(text)
        if self.config.l1:
            vec = self.embeddings_l1.get(key)
            self._count("embedding", "l1", vec is not None)
            if vec is not None:
                return vec
        if self.redis is None:
            return None
        client = self.redis
        raw = await self._call("get", lambda: client.get(key))
        if isinstance(raw, _Skipped):
            return None
        vec = None
        if isinstance(raw, bytes) and len(raw) == DIM * 4:
            vec = np.frombuffer(raw, dtype=np.float32).reshape(1, DIM)
        self._count("embedding", "redis", vec is not None)
        if vec is not None and self.config.l1:
            self.embeddings_l1.set(key, vec, time.time() + self.config.l1_ttl_s)
        return vec

    async def put_embedding(self, text: str, vector: Vectors) -> None:
        if not self.config.embeddings:
            return
        key = self._embedding_key(text)
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, DIM)
        ttl = self._ttl(self.config.embedding_ttl_s)
        if self.config.l1:
            self.embeddings_l1.set(key, vec, time.time() + min(ttl, self.config.l1_ttl_s))
        if self.redis is None:
            return
        client = self.redis
        payload = vec.tobytes()
        await self._call("set", lambda: client.set(key, payload, px=max(1, int(ttl * 1000))))

    def _count(self, cache: str, layer: str, hit: bool) -> None:
        counter = self.metrics.cache_hits if hit else self.metrics.cache_misses
        counter.labels(cache, layer).inc()


async def _set_nx_get(client: aioredis.Redis, key: str, value: str) -> Any:
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(key, value, nx=True)
        pipe.get(key)
        _, current = await pipe.execute()
    return current


async def bump_generation(redis_url: str, timeout_s: float = 2.0) -> int:
    """For the bulk loader (a separate process): INCR the generation once, or raise."""
    client = aioredis.Redis.from_url(
        redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        script = client.register_script(_BUMP_LUA)
        value = await script(keys=[f"{NAMESPACE}:gen"], args=[str(secrets.randbits(52))])
        return int(value)
    finally:
        await client.aclose()
