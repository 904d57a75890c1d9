"""The corpus generation and the write log in Redis: one Lua script to write, one to read.

Every write bumps the generation by one per record and appends the records (see
:mod:`service.cache` for what that guarantees); every search reads the generation first,
and in the same round trip the log records this process does not hold yet.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from service.cache.redis import RedisLink, Skipped
from service.cache.writelog import WriteLog, WriteRecord
from service.metrics import Metrics

log = logging.getLogger("service.cache")

# Key prefix of the generation and the write log; change it when their format changes.
# Workers of an older version (rolling deploy) INCR the same generation without a log
# record: the gap this leaves makes every older entry stale, which is safe.
NAMESPACE = "sc1"
LOG_READ_MAX = 256  # write-log records one generation read brings back at most

# One write: bump the generation by the number of records and append them, each prefixed
# with its own generation, to the log, trimmed to its last ARGV[2] records; atomically.
# A missing generation key starts from a random number (see service.cache). Generations
# stay below 2**53 (52-bit start), so Lua's doubles and '%d' hold them exactly.
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


class Generation:
    """This worker's view of the corpus generation, and its writes to it."""

    def __init__(
        self,
        link: RedisLink,
        write_log: WriteLog,
        metrics: Metrics,
        *,
        enabled: bool,
        validate: bool,
        log_size: int,
        namespace: str = NAMESPACE,
        on_reset: Callable[[], None] = lambda: None,
    ) -> None:
        self.link = link
        self.write_log = write_log
        self.metrics = metrics
        self.enabled = enabled  # the result cache is on: reads are worth making
        self.validate = validate
        self.log_size = log_size
        self._on_reset = on_reset  # called when no cached result can be served again
        self._gen_key = f"{namespace}:gen"
        self._log_key = f"{namespace}:log"
        self._pending: asyncio.Future[int | None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_bump = False
        client = link.client
        self._write_script = client.register_script(_WRITE_LUA) if client is not None else None
        self._read_script = client.register_script(_READ_LUA) if client is not None else None

    async def read(self) -> int | None:
        """The corpus generation, read from Redis for every request; None: bypass.

        Concurrent requests share one read, but only a read not yet sent when they
        joined it: a request that starts after a write returned must see its INCR, and
        a GET already on the wire may have been answered before that INCR.
        """
        if not self.enabled:
            return None
        if self._pending_bump and await self.bump("retry") is None:
            return None
        fut = self._pending
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._pending = fut
            loop.call_soon(self._send_read, fut)
        return await asyncio.shield(fut)

    def _send_read(self, fut: asyncio.Future[int | None]) -> None:
        if self._pending is fut:
            self._pending = None  # later requests get a read of their own
        task = asyncio.get_running_loop().create_task(self._read_into(fut))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_into(self, fut: asyncio.Future[int | None]) -> None:
        try:
            value = await self._read_now()
        except BaseException as exc:  # never leave the waiters hanging
            if not fut.done():
                fut.set_result(None)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not fut.done():
            fut.set_result(value)

    async def _read_now(self) -> int | None:
        if self.validate:
            return await self._read_with_log()
        raw = await self.link.get("gen", self._gen_key)
        if isinstance(raw, Skipped):
            return None
        return await self._value(raw)

    async def _read_with_log(self) -> int | None:
        """The generation and, in the same round trip, the log records this process lacks."""
        assert self._read_script is not None, "an enabled generation implies a client"
        script = self._read_script
        keys = [self._gen_key, self._log_key]
        args = [str(self.write_log.top), str(min(LOG_READ_MAX, self.log_size))]
        reply = await self.link.call("gen", lambda: script(keys=keys, args=args))
        if isinstance(reply, Skipped):
            return None
        if not isinstance(reply, list) or not reply or reply[0] is None:
            created = await self._value(None)
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

    async def _value(self, raw: Any) -> int | None:
        """``raw`` as read; a missing key is created from a random start (service.cache)."""
        client = self.link.require()
        if raw is None:
            start = str(secrets.randbits(52))
            raw = await self.link.call("gen", lambda: _set_nx_get(client, self._gen_key, start))
            if isinstance(raw, Skipped) or raw is None:
                return None
        return int(raw)

    async def bump(self, reason: str, records: Sequence[WriteRecord] = ()) -> int | None:
        """Log a committed write and bump the generation, atomically; None if that failed.

        ``records`` describe the write, one generation each; none means ``reset`` (every
        entry changes). On failure the worker bypasses its cache until a retry, which
        logs a ``reset``: the failed write's records are not kept.
        """
        if self.link.client is None or self._write_script is None:
            return None
        script = self._write_script
        logged = list(records) or [WriteRecord("reset")]
        args: list[bytes | str] = [str(secrets.randbits(52)), str(self.log_size)]
        args += [r.encode() for r in logged]
        keys = [self._gen_key, self._log_key]
        # A bump must not be skipped by an open breaker: try it even then.
        try:
            value = await asyncio.wait_for(script(keys=keys, args=args), self.link.timeout_s * 4)
        except Exception as exc:  # see RedisLink.call: never fail a write for the cache
            self.metrics.redis_errors.labels("bump").inc()
            self.link.breaker.failure()
            self._pending_bump = True
            log.warning(
                "could not bump the corpus generation (%r); results bypass the cache "
                "in this worker until it succeeds",
                exc,
            )
            return None
        self._pending_bump = False
        self.link.breaker.success()
        if not self.validate or logged[-1].kind == "reset":
            self._on_reset()  # entries none of which can be served again: free them
        self.metrics.cache_invalidations.labels(reason).inc()
        return int(value)


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
