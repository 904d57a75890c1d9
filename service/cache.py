"""Query-result and query-embedding cache: an in-process L1 in front of Valkey/Redis.

Correctness rests on the *corpus generation*, a counter in Redis, and the *write log*, a
Redis list of the last ``SEARCH_CACHE_LOG_SIZE`` writes. Every write (``POST``/``DELETE
/v1/documents``, the bulk loader, ``POST /v1/cache/invalidate``), after its transaction
commits and before it answers, runs one Lua script that bumps the generation by one per
record and appends the records, each with its generation: ``insert`` (document id, topic,
float32 embedding), ``delete`` (id), or ``reset`` (bulk load, admin, a lost record;
changes everything). Every search reads the generation from Redis first, and in the same
round trip the log records this process does not hold yet (immutable: kept per process
by generation). A cached result carries the generation ``g0`` it was computed at (read
before computing), its query vector, and its hits; keys hold no generation (the
single-flight and the cross-worker lock still do). At current generation ``G``:

- ``g0 == G``: served.
- ``g0 < G`` (validation on): checked against the records ``g0+1 .. G``. It is still the
  exact top k unless an ``insert`` matching its topic filter lies within its k-th
  distance (+ a float16 margin) or it had fewer than k hits, a ``delete`` hits one of its
  ids, a ``reset`` comes, or a record is missing (trimmed, lost, unreadable). Kept: served
  and, in L1, re-stamped with ``G``; otherwise a miss.
- ``g0 > G``: a miss (an entry from before Valkey restarted with a new random generation).

A search that starts after a write returned reads a generation that includes it, and the
write's record came with it, so it never serves a result that write changed. The check
is exact for exact search; with an ANN index a result is only as exact as the index was.
Stale entries are overwritten by the next fill or age out by TTL (or LRU).

Decision table: what may be served, per situation

=============================  ================  ==============  ==========================
situation                      result L1         result Redis    embeddings (L1 / Redis)
=============================  ================  ==============  ==========================
Redis reachable                yes, if of gen G   yes, as L1      yes / yes
                               or validated to G
SEARCH_CACHE_VALIDATE=0        only of gen G      only of gen G   yes / yes
no REDIS_URL                   no: no shared gen  no              yes / no
                               to key it with
generation read fails or the   no (bypass: the    no              yes / no
breaker is open                gen is unknown)
this worker's own write        no, until a retry  no              yes / no
script failed (pending)        (a reset) works
SEARCH_CACHE_ENABLED=0         no                 no              per SEARCH_EMBED_CACHE_*
=============================  ================  ==============  ==========================

Embeddings are a pure function of (model id, normalised text), so they need no
generation and the L1 may serve them even with Redis down. A generation key that is
missing (Valkey restarted empty, or evicted) is re-created from a random 52-bit number,
never from 0, so that an L1 entry from an earlier life of the server cannot match again.
Known window: if another worker's write script fails (Redis unreachable just then) and
Redis comes back without having restarted, *other* workers may serve pre-write results
until that worker's retry succeeds (its next request) or the TTL ends.

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
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, replace
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
from service.writelog import WriteLog, WriteRecord

log = logging.getLogger("service.cache")

V = TypeVar("V")
T = TypeVar("T")
VALUE_VERSION = 2  # part of the result key too: another format never meets this one
# Key prefix of the generation and the write log; change it when their format changes.
# Workers of an older version (rolling deploy) INCR the same generation without a log
# record: the gap this leaves makes every older entry stale, which is safe.
NAMESPACE = "sc1"
REDIS_MAX_CONNECTIONS = 32
LOG_READ_MAX = 256  # write-log records one generation read brings back at most

# One write: bump the generation by the number of records and append them, each prefixed
# with its own generation, to the log, trimmed to its last ARGV[2] records; atomically.
# A missing generation key starts from a random number (see above). Generations stay
# below 2**53 (52-bit start), so Lua's doubles and '%d' hold them exactly.
_WRITE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[1], n)
for i = 1, n do
  redis.call('RPUSH', KEYS[2], string.format('%d', last - n + i) .. ' ' .. ARGV[i + 2])
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return last
"""

# One read: the generation and the log records above ARGV[1] (at most ARGV[2], newest
# last), atomically, so that the records up to the returned generation are all there
# unless trimmed. A missing generation key returns {false}.
_READ_LUA = """
local g = redis.call('GET', KEYS[1])
if not g then return {false} end
local want = tonumber(g) - tonumber(ARGV[1])
if want > tonumber(ARGV[2]) then want = tonumber(ARGV[2]) end
if want <= 0 then return {g} end
local out = redis.call('LRANGE', KEYS[2], -want, -1)
table.insert(out, 1, g)
return out
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
    """A result list, the generation it is exact at, and the query vector to validate it."""

    hits: tuple[Hit, ...]
    delta_s: float  # time the computation took (XFetch)
    expires_at: float  # wall clock, shared by every process
    gen: int = 0  # corpus generation read before the computation started
    vector: bytes = b""  # the query's float32 embedding; empty: cannot be validated

    def encode(self) -> bytes:
        rows = [[h.id, h.title, h.score, h.topic] for h in self.hits]
        head = {"v": VALUE_VERSION, "d": self.delta_s, "e": self.expires_at, "g": self.gen}
        # orjson never writes a raw newline: the vector's bytes follow the first one
        return orjson.dumps({**head, "h": rows}) + b"\n" + self.vector

    @classmethod
    def decode(cls, raw: bytes) -> CachedResult:
        head, _, vector = raw.partition(b"\n")
        obj = orjson.loads(head)
        if not isinstance(obj, dict) or obj.get("v") != VALUE_VERSION:
            raise ValueError("unknown cache value version")
        if len(vector) not in (0, DIM * 4):
            raise ValueError(f"cache value vector has {len(vector)} bytes, expected {DIM * 4}")
        hits = tuple(Hit(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in obj["h"])
        return cls(hits, float(obj["d"]), float(obj["e"]), int(obj["g"]), vector)


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
        self.write_log = WriteLog(config.log_size)
        self._gen_key = f"{config.namespace}:gen"
        self._log_key = f"{config.namespace}:log"
        self._gen_pending: asyncio.Future[int | None] | None = None
        self._gen_tasks: set[asyncio.Task[None]] = set()
        self._pending_bump = False
        self._write_script = client.register_script(_WRITE_LUA) if client is not None else None
        self._read_script = client.register_script(_READ_LUA) if client is not None else None

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
        if self.config.validate:
            return await self._read_generation_and_log()
        raw = await self._call("gen", lambda: client.get(self._gen_key))
        if isinstance(raw, _Skipped):
            return None
        return await self._generation_value(raw)

    async def _read_generation_and_log(self) -> int | None:
        """The generation and, in the same round trip, the log records this process lacks."""
        assert self._read_script is not None, "results_enabled implies a client"
        script = self._read_script
        keys = [self._gen_key, self._log_key]
        args = [str(self.write_log.top), str(min(LOG_READ_MAX, self.config.log_size))]
        reply = await self._call("gen", lambda: script(keys=keys, args=args))
        if isinstance(reply, _Skipped):
            return None
        if not isinstance(reply, list) or not reply or reply[0] is None:
            created = await self._generation_value(None)
            if created is not None:
                self.write_log.observe(created, [])
            return created
        gen = int(reply[0])
        records = []
        for raw in reply[1:]:
            try:
                records.append(WriteRecord.decode_logged(raw))
            except (ValueError, TypeError):  # left out: a gap, so entries it touches drop
                self.metrics.redis_errors.labels("decode").inc()
        self.write_log.observe(gen, records)
        return gen

    async def _generation_value(self, raw: Any) -> int | None:
        """``raw`` as read; a missing key is created from a random start (module docstring)."""
        assert self.redis is not None, "results_enabled implies a client"
        client = self.redis
        if raw is None:
            start = str(secrets.randbits(52))
            raw = await self._call("gen", lambda: _set_nx_get(client, self._gen_key, start))
            if isinstance(raw, _Skipped) or raw is None:
                return None
        return int(raw)

    async def bump(self, reason: str, records: Sequence[WriteRecord] = ()) -> int | None:
        """Log a committed write and bump the generation, atomically; None if that failed.

        ``records`` describe the write, one generation each; none means ``reset`` (every
        entry changes). On failure the worker bypasses its cache until a retry, which
        logs a ``reset``: the failed write's records are not kept.
        """
        if self.redis is None or self._write_script is None:
            return None
        script = self._write_script
        logged = list(records) or [WriteRecord("reset")]
        args: list[bytes | str] = [str(secrets.randbits(52)), str(self.config.log_size)]
        args += [r.encode() for r in logged]
        keys = [self._gen_key, self._log_key]
        # A bump must not be skipped by an open breaker: try it even then.
        try:
            value = await asyncio.wait_for(
                script(keys=keys, args=args), self.config.redis_timeout_s * 4
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
        if not self.config.validate or logged[-1].kind == "reset":
            self.results_l1.clear()  # entries none of which can be served again: free them
        self.metrics.cache_invalidations.labels(reason).inc()
        return int(value)

    # ------------------------------------------------------------------ results

    def result_key(self, query: SearchQuery) -> str:
        material = orjson.dumps([self.fingerprint, query.normalised, query.k, query.topic])
        return hashlib.blake2b(material, digest_size=16).hexdigest()

    def _redis_result_key(self, key: str) -> str:
        return f"{self.config.namespace}:r{VALUE_VERSION}:{key}"

    def _current(
        self, entry: CachedResult, gen: int, query: SearchQuery
    ) -> tuple[CachedResult | None, bool]:
        """The entry if it is exact at ``gen`` (re-stamped if validated), and whether it was.

        Never an entry of a later generation: after Valkey restarted empty the new
        random generation may lie below an L1 entry's.
        """
        if entry.gen == gen:
            return entry, False
        if entry.gen > gen or not self.config.validate:
            return None, False
        outcome = self.write_log.check(entry, gen, query.k, query.topic)
        self.metrics.cache_validations.labels(outcome).inc()
        if outcome != "kept":
            return None, False
        return replace(entry, gen=gen), True

    def l1_get(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        if not self.config.l1:
            return None
        entry = self.results_l1.get(key)
        restamped = False
        if entry is not None:
            entry, restamped = self._current(entry, gen, query)
        self._count("result", "l1", entry is not None)
        if entry is not None and restamped:
            self._l1_put(key, entry)
        return entry

    async def redis_get(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        assert self.redis is not None, "redis_get needs a client"
        client = self.redis
        raw = await self._call("get", lambda: client.get(self._redis_result_key(key)))
        if isinstance(raw, _Skipped):
            return None
        entry = None
        if isinstance(raw, bytes):
            try:
                entry = CachedResult.decode(raw)
            except (ValueError, KeyError, IndexError, TypeError):
                self.metrics.redis_errors.labels("decode").inc()
        if entry is not None:
            entry, _ = self._current(entry, gen, query)
        self._count("result", "redis", entry is not None)
        if entry is not None:
            self._l1_put(key, entry)
        return entry

    async def fill(
        self, gen: int, key: str, hits: tuple[Hit, ...], delta_s: float, vector: Vectors
    ) -> None:
        """Store a result computed after reading ``gen``, with its query ``vector``."""
        ttl = self._ttl(self.config.result_ttl_s)
        raw = np.ascontiguousarray(vector, dtype=np.float32).reshape(DIM).tobytes()
        entry = CachedResult(hits, delta_s, time.time() + ttl, gen, raw)
        self._l1_put(key, entry)
        assert self.redis is not None, "fill needs a client"
        client = self.redis
        payload = entry.encode()
        await self._call(
            "set",
            lambda: client.set(self._redis_result_key(key), payload, px=max(1, int(ttl * 1000))),
        )

    def _l1_put(self, key: str, entry: CachedResult) -> None:
        if self.config.l1:
            expires = min(entry.expires_at, time.time() + self.config.l1_ttl_s)
            self.results_l1.set(key, entry, expires)

    def should_refresh(self, entry: CachedResult) -> bool:
        """XFetch: recompute before expiry with a probability that grows towards it."""
        beta = self.config.xfetch_beta
        if beta <= 0:
            return False
        draw = -math.log(1.0 - random.random())  # Exp(1); 1 - random() is in (0, 1]
        return time.time() + entry.delta_s * beta * draw >= entry.expires_at

    # ------------------------------------------------------------------ cross-worker lock

    def _lock_key(self, gen: int, key: str) -> str:
        return f"{self.config.namespace}:lock:{gen}:{key}"

    async def try_lock(self, gen: int, key: str) -> bool | None:
        """True: this worker computes; False: another does; None: Redis unusable."""
        assert self.redis is not None, "try_lock needs a client"
        client = self.redis
        lock_key = self._lock_key(gen, key)
        got = await self._call(
            "lock", lambda: client.set(lock_key, b"1", nx=True, px=self.config.lock_ttl_ms)
        )
        if isinstance(got, _Skipped):
            return None
        return bool(got)

    async def unlock(self, gen: int, key: str) -> None:
        assert self.redis is not None, "unlock needs a client"
        client = self.redis
        await self._call("unlock", lambda: client.delete(self._lock_key(gen, key)))

    async def wait_for_fill(self, gen: int, key: str, query: SearchQuery) -> CachedResult | None:
        """Poll for the value another worker is computing, until its lock expires."""
        deadline = time.monotonic() + self.config.lock_ttl_ms / 1000
        delay = 0.002
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
            entry = await self.redis_get(gen, key, query)
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


async def bump_generation(redis_url: str, log_size: int, timeout_s: float = 2.0) -> int:
    """For the bulk loader (a separate process): log a ``reset`` and bump, or raise."""
    client = aioredis.Redis.from_url(
        redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        script = client.register_script(_WRITE_LUA)
        args: list[bytes | str] = [str(secrets.randbits(52)), str(log_size)]
        value = await script(
            keys=[f"{NAMESPACE}:gen", f"{NAMESPACE}:log"],
            args=[*args, WriteRecord("reset").encode()],
        )
        return int(value)
    finally:
        await client.aclose()
