"""The corpus generation and the write log in Redis: one Lua script to write, one to read.

Every write bumps the generation by one per record and appends the records (see
:mod:`service.cache` for what that guarantees); every search reads the generation first,
and in the same round trip the log records this process does not hold yet and the cached
values its request needs (its result and its query's embedding, unless the L1 holds
them). The requests of one loop turn share one read: one script call, one round trip.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

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
MAX_KEYS_PER_READ = 128  # values one read brings back at most; more go in another read

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

# One read: the generation, the number of log records above ARGV[1] (at most ARGV[2])
# and those records (newest last), then the value of each further key (GET: false when
# missing, '' when not a string: a decode error, and the fill's SET replaces it);
# atomically, so that the records up to the returned generation are all there unless
# trimmed. A missing generation key gives false in its place.
_READ_LUA = """
local g = redis.call('GET', KEYS[1])
local out = {g, 0}
if g then
  local want = tonumber(g) - tonumber(ARGV[1])
  if want > tonumber(ARGV[2]) then want = tonumber(ARGV[2]) end
  if want > 0 then
    local records = redis.call('LRANGE', KEYS[2], -want, -1)
    out[2] = #records
    for i = 1, #records do out[#out + 1] = records[i] end
  end
end
for i = 3, #KEYS do
  local v = redis.pcall('GET', KEYS[i])
  if type(v) == 'table' and v.err then v = '' end
  out[#out + 1] = v
end
return out
"""

Values: TypeAlias = list[Any]  # GET replies, in the order of the keys asked for


class _Read:
    """One read being gathered in this loop turn: the keys its requests asked for."""

    __slots__ = ("fut", "index", "keys")

    def __init__(self, fut: asyncio.Future[tuple[int, Values] | None]) -> None:
        self.fut = fut
        self.keys: list[str] = []
        self.index: dict[str, int] = {}

    def add(self, key: str) -> int:
        slot = self.index.get(key)
        if slot is None:
            slot = self.index[key] = len(self.keys)
            self.keys.append(key)
        return slot


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
        self._pending: _Read | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_bump = False
        client = link.client
        self._write_script = client.register_script(_WRITE_LUA) if client is not None else None
        self._read_script = client.register_script(_READ_LUA) if client is not None else None

    async def read(self, keys: Sequence[str] = ()) -> tuple[int, Values] | None:
        """The corpus generation and the values of ``keys`` (GET replies); None: bypass.

        The requests of one loop turn share one read (one script call), but only a read
        not yet sent when they joined it: a request that starts after a write returned
        must see its INCR, and a read already on the wire may have been answered before
        that INCR.
        """
        if not self.enabled:
            return None
        if self._pending_bump and await self.bump("retry") is None:
            return None
        batch = self._pending
        if batch is None or len(batch.keys) + len(keys) > MAX_KEYS_PER_READ:
            loop = asyncio.get_running_loop()
            batch = _Read(loop.create_future())
            self._pending = batch
            loop.call_soon(self._send_read, batch)
        slots = [batch.add(key) for key in keys]
        got = await asyncio.shield(batch.fut)
        if got is None:
            return None
        gen, values = got
        return gen, [values[slot] for slot in slots]

    def _send_read(self, batch: _Read) -> None:
        if self._pending is batch:
            self._pending = None  # later requests get a read of their own
        task = asyncio.get_running_loop().create_task(self._read_into(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_into(self, batch: _Read) -> None:
        fut = batch.fut
        try:
            value = await self._read_now(batch.keys)
        except BaseException as exc:  # never leave the waiters hanging
            if not fut.done():
                fut.set_result(None)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not fut.done():
            fut.set_result(value)

    async def _read_now(self, keys: list[str]) -> tuple[int, Values] | None:
        """The generation, the log records this process lacks (when validating) and the
        values of ``keys``, in one round trip."""
        assert self._read_script is not None, "an enabled generation implies a client"
        script = self._read_script
        log_max = min(LOG_READ_MAX, self.log_size) if self.validate else 0
        all_keys = [self._gen_key, self._log_key, *keys]
        args = [str(self.write_log.top), str(log_max)]
        reply = await self.link.call("gen", lambda: script(keys=all_keys, args=args))
        if isinstance(reply, Skipped):
            return None
        if not isinstance(reply, list) or len(reply) != 2 + int(reply[1]) + len(keys):
            self.metrics.redis_errors.labels("decode").inc()
            return None
        n = int(reply[1])
        values = reply[2 + n :]
        if reply[0] is None:
            created = await self._value(None)
            if created is None:
                return None
            if self.validate:
                self.write_log.observe(created, [])
            return created, values
        gen = int(reply[0])
        if self.validate:
            records = []
            for raw in reply[2 : 2 + n]:
                try:
                    records.append(WriteRecord.decode_logged(raw))
                except (ValueError, TypeError):  # left out: a gap, so entries it touches drop
                    self.metrics.redis_errors.labels("decode").inc()
            self.write_log.observe(gen, records)
        return gen, values

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
