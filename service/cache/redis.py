"""The cache's Redis client: built without connecting, every call bounded and guarded.

:func:`connect_client` builds a bounded pool that a Redis that is down never stops at
start-up. :class:`RedisLink` runs each call with a timeout behind a circuit breaker; a
failure or a skipped call becomes :data:`SKIPPED` (a miss), never an error. Several
commands can go in one call (:meth:`RedisLink.get_many`, :meth:`RedisLink.set_many`: one
non-transactional pipeline, one round trip), which then fails or is skipped as a whole.

The cache is an optimisation: when Redis is down or slow, requests must be answered from
PostgreSQL at full speed rather than each paying a timeout. After ``failures``
consecutive errors the breaker opens and every call is skipped at once; after
``cooldown_s`` one call is let through (half-open) to probe; its success closes the
breaker, its failure opens it for another cooldown.

=========  =====================================  ==================================
state      a call is                               next state
=========  =====================================  ==================================
closed     attempted                               open after N consecutive failures
open       skipped (cache miss) until cooldown     half_open when the cooldown ends
half_open  attempted by one probe; others skip     closed on success, open on failure
=========  =====================================  ==================================

The timeout measures Redis, not this worker's backlog. A call's timer
(``SEARCH_REDIS_TIMEOUT_MS``) runs on the event loop, and so does the task that reads the
reply: when the loop is busy (2000 streams arriving at once), a reply that came in time
waits behind them, and the timer fires late. A timer that fires more than the timeout
late shows that the loop, not Redis, ate the budget: the call gets another timeout from
then instead of failing, up to :data:`REDIS_LAG_CAP_S` after it started. With a loop that
keeps up, a Redis that stalls is still cut at the timeout (plus at most one late timer of
less than the timeout), and the breaker opens as before.

=================================  =========================================
the call's timer fires             then
=================================  =========================================
at most the timeout late           the call fails (a timeout: counted)
more than the timeout late         another timeout from now (lag extension)
at or after the cap                the call fails, however late the timer was
=================================  =========================================
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.cache.getbatch import GetBatcher, WriteBehind
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.cache")

T = TypeVar("T")
REDIS_MAX_CONNECTIONS = 32
# Writes behind the response (service/cache/getbatch.py: WriteBehind): a batch leaves
# this long after its first write, or at the end of the turn it reached this many writes;
# beyond the bound, writes are dropped (a cache write is best effort). Each batch costs
# the event loop a socket write and Valkey a wake-up; 20 ms gathers a dozen misses' writes
# at 300 misses/s, and another worker finds them in Redis at most that much later.
WRITE_BEHIND_INTERVAL_S = 0.02
WRITE_BEHIND_BATCH = 32
WRITE_BEHIND_MAX_PENDING = 4096
# The longest a call may take while the event loop lags (a timeout above it: the timeout).
# A fixed time, not a multiple of the timeout: what it tolerates is this worker's backlog,
# which does not shrink with SEARCH_REDIS_TIMEOUT_MS (10 x 1 ms would forgive no burst).
# A call reaches it only if Redis stalls while the loop is overloaded; the calls then in
# flight each lose up to 1 s before the breaker opens. Measured, 2000 streams arriving at
# once (benchmarks/sse_scale.py --ramp 0): the calls a burst loses are waits for a pooled
# connection, which batching removes (service/cache/getbatch.py), not lag beyond the cap.
# Also the pool's own timeouts, a last resort behind the call's.
REDIS_LAG_CAP_S = 1.0

BreakerState = Literal["closed", "open", "half_open"]
STATE_CODES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Counts consecutive failures; not thread-safe (one per event loop)."""

    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures={failures} is invalid: expected >= 1")
        if cooldown_s <= 0:
            raise ValueError(f"cooldown_s={cooldown_s} is invalid: expected > 0")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            self._set("half_open")
        return self._state

    def allow(self) -> bool:
        """May a call be attempted now? In half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._consecutive = 0
        self._probing = False
        if self._state != "closed":
            self._set("closed")

    def failure(self) -> None:
        self._consecutive += 1
        was_probe = self._probing
        self._probing = False
        if was_probe or self._state == "half_open" or self._consecutive >= self.failures:
            self._opened_at = self._clock()
            if self._state != "open":
                self._set("open")

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)


class Skipped:
    """Marker: the Redis call was not made or failed; treat as a miss."""


SKIPPED = Skipped()


@dataclass(frozen=True, slots=True)
class Write:
    """One ``SET key value PX ttl`` to send (several go in one round trip)."""

    key: str
    value: bytes
    ttl_s: float

    @property
    def px(self) -> int:
        return max(1, int(self.ttl_s * 1000))  # at least 1 ms: PX 0 is an error


def connect_client(settings: Settings) -> aioredis.Redis | None:
    """Build the client without connecting: a Redis that is down must not stop start-up."""
    if not settings.redis_url or not (settings.cache_enabled or settings.embed_cache_enabled):
        return None
    # RedisLink bounds every call, the wait for a pooled connection included, with its
    # lag-tolerant deadline; redis-py's own timers are lag-prone (a reply read in time
    # times out behind a busy loop), so the pool's and the connect's are only a last
    # resort, at the cap. No socket_timeout at all: it would send every command through
    # wait_for (a task per send on 3.11) and time every read, for nothing the call's
    # deadline does not already cut.
    last_resort = lag_cap_s(settings.redis_timeout_ms / 1000)
    # A bounded pool: a burst of requests must not open one connection each.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=last_resort,  # waiting for a free connection
        socket_timeout=None,
        socket_connect_timeout=last_resort,
        retry=Retry(NoBackoff(), 0),  # the breaker decides about retrying
        health_check_interval=0,
    )
    # from_pool: the client owns the pool, so aclose() closes its connections too
    # (Redis(connection_pool=pool) leaves every pooled connection open at shutdown)
    return aioredis.Redis.from_pool(pool)


def lag_cap_s(timeout_s: float) -> float:
    """The longest a call with this timeout may take, however late the loop is."""
    return max(REDIS_LAG_CAP_S, timeout_s)


class _Deadline:
    """One call's deadline: ``timeout_s`` from the start, extended by another
    ``timeout_s`` whenever its timer fires more than ``timeout_s`` late (the loop lagged),
    never beyond ``cap_s`` from the start. It expires ``scope`` (an ``asyncio.timeout``
    with no deadline of its own): one timer per call, no task."""

    __slots__ = ("_cap", "_due", "_handle", "_loop", "_on_extend", "_scope", "_timeout_s")

    def __init__(
        self,
        scope: asyncio.Timeout,
        timeout_s: float,
        cap_s: float,
        on_extend: Callable[[], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._scope = scope
        self._timeout_s = timeout_s
        now = self._loop.time()
        self._due = now + timeout_s
        self._cap = now + cap_s
        self._on_extend = on_extend
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        if now - self._due > self._timeout_s and now < self._cap:
            self._due = min(now + self._timeout_s, self._cap)
            self._handle = self._loop.call_at(self._due, self._fire)
            self._on_extend()
            return
        self._handle = None
        # expires on the loop's next turn, after the wake-ups already queued: a reply
        # read just now still wins
        self._scope.reschedule(now)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class RedisLink:
    """One worker's Redis client (or none), its breaker and the timeout of every call."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        metrics: Metrics,
        *,
        timeout_s: float,
        breaker_failures: int,
        breaker_cooldown_s: float,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.timeout_s = timeout_s  # see the module docstring: extended while the loop lags
        self.breaker = CircuitBreaker(
            breaker_failures, breaker_cooldown_s, on_change=metrics.on_breaker
        )
        metrics.on_breaker("closed")
        self._gets = GetBatcher(
            self._get_one, self._mget, is_skipped=lambda r: isinstance(r, Skipped)
        )
        self._sets: WriteBehind[Write] = WriteBehind(
            self._write,
            interval_s=WRITE_BEHIND_INTERVAL_S,
            batch=WRITE_BEHIND_BATCH,
            max_pending=WRITE_BEHIND_MAX_PENDING,
            on_drop=metrics.cache_writes_dropped.labels("full").inc,
        )

    def require(self) -> aioredis.Redis:
        assert self.client is not None, "this cache path needs a Redis client"
        return self.client

    @property
    def cap_s(self) -> float:
        """The longest a call may take, however late the event loop is."""
        return lag_cap_s(self.timeout_s)

    async def call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T | Skipped:
        """One Redis call with a lag-tolerant timeout (module docstring); errors open the
        breaker, never propagate."""
        if self.client is None:
            return SKIPPED
        if not self.breaker.allow():
            self.metrics.redis_skipped.inc()
            return SKIPPED
        try:
            # asyncio.timeout, not wait_for: no task per call (6.8 vs 18.0 us here, and
            # several Redis calls per cache miss); its deadline is _Deadline's timer
            async with asyncio.timeout(None) as scope:
                deadline = _Deadline(scope, self.timeout_s, self.cap_s, self._lagged)
                try:
                    result = await fn()
                finally:
                    deadline.cancel()
        except Exception as exc:  # any failure of the cache becomes a miss, never a 500
            self.breaker.failure()
            self.metrics.redis_errors.labels(op).inc()
            log.debug("redis %s failed: %r", op, exc)
            return SKIPPED
        self.breaker.success()
        return result

    def _lagged(self) -> None:
        self.metrics.redis_lag_extensions.inc()

    async def get(self, op: str, key: str) -> Any:
        """``GET key``; :data:`SKIPPED` when the call was skipped or failed. GETs of one
        loop turn travel as one MGET (:mod:`service.cache.getbatch`)."""
        self.require()
        return await self._gets.get(op, key)

    async def _get_one(self, op: str, key: str) -> Any:
        client = self.require()
        return await self.call(op, lambda: client.get(key))

    async def _mget(self, keys: list[str]) -> list[Any] | Skipped:
        client = self.require()
        return await self.call("mget", lambda: client.mget(keys))

    async def get_many(self, op: str, keys: Sequence[str]) -> list[Any] | Skipped:
        """``GET`` of each key in one round trip (one call: it fails or is skipped whole)."""
        assert keys, "get_many needs at least one key"
        if len(keys) == 1:  # a plain GET: a pipeline costs more Python for nothing
            got = await self.get(op, keys[0])
            return got if isinstance(got, Skipped) else [got]
        client = self.require()
        return await self.call(op, lambda: _get_pipelined(client, keys))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """``SET key value PX ttl`` (at least 1 ms), best effort."""
        await self.set_many([Write(key, value, ttl_s)])

    async def set_many(self, writes: Sequence[Write]) -> None:
        """Every write in one round trip (one call), best effort, sent at the end of this
        loop turn with the others queued (:mod:`service.cache.getbatch`); returns once
        sent. None: no call."""
        if not writes:
            return
        self.require()
        sent = self._sets.put(writes, wait=True)
        if sent is not None:
            await sent

    def set_behind(self, writes: Sequence[Write]) -> None:
        """Queue ``writes`` to go behind the response (:class:`WriteBehind`: batched,
        bounded); dropped at once while the breaker is open."""
        if not writes or self.client is None:
            return
        if self.breaker.state == "open":
            self.metrics.cache_writes_dropped.labels("breaker").inc(len(writes))
            return
        self._sets.put(writes)

    async def _write(self, writes: list[Write]) -> None:
        client = self.require()
        if len(writes) == 1:  # a plain SET: a pipeline costs more Python for nothing
            w = writes[0]
            await self.call("set", lambda: client.set(w.key, w.value, px=w.px))
            return
        await self.call("set", lambda: _set_pipelined(client, writes))

    async def flush(self, grace_s: float = 2.0) -> None:
        """Send the writes queued behind responses now; wait for the calls on the wire."""
        await self._gets.drain(grace_s)
        await self._sets.drain(grace_s)

    async def aclose(self, grace_s: float = 2.0) -> None:
        if self.client is not None:
            await self.flush(grace_s)
            try:
                await asyncio.wait_for(self.client.aclose(), grace_s)
            except (TimeoutError, OSError, aioredis.RedisError):
                log.warning("closing the Redis client timed out or failed")


# Non-transactional pipelines: the commands travel in one write and their replies come
# back in one read, with no MULTI/EXEC (nothing here needs them atomic). No ``async
# with``: execute() already resets the pipeline and returns its connection, even when
# it fails or is cancelled by the call's timeout. raise_on_error: an error reply to any
# command fails the whole call, as that command's own call would have.


async def _get_pipelined(client: aioredis.Redis, keys: Sequence[str]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return await pipe.execute(raise_on_error=True)


async def _set_pipelined(client: aioredis.Redis, writes: Sequence[Write]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for w in writes:
        pipe.set(w.key, w.value, px=w.px)
    return await pipe.execute(raise_on_error=True)
