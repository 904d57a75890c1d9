"""Single-key GETs issued in the same turn of the event loop go to Redis as one MGET, and
the writes of one turn as one pipeline.

Under a burst (2,000 streams arriving at once on one worker) hundreds of lookups each
send a GET at nearly the same moment. Through the pool's bounded connections they queue,
and the wait for a free connection counts against each call's timeout: calls "time out"
while Valkey is idle, the breaker opens, lookups bypass the cache and identical streams
compute twice (measured with ``benchmarks/sse_scale.py --ramp 0``: 353 failed calls in
one burst, 513 computations for 491 distinct queries). Batched, they take one connection
and one round trip per turn of the loop. A lone GET, the case of every request at light
load, stays a plain GET: nothing waits, and a batch costs nothing it does not save.

Each batch is one guarded call of :class:`service.cache.redis.RedisLink` (one timeout,
one breaker verdict, counted once); a caller that is cancelled leaves the batch to the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

Single: TypeAlias = Callable[[str, str], Awaitable[Any]]  # (op, key) -> reply or SKIPPED
Many: TypeAlias = Callable[[list[str]], Awaitable[Any]]  # keys -> list of replies or SKIPPED
W = TypeVar("W")


class _OnTheWire:
    """The batches sent and not yet answered, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace_s: float) -> None:
        """Let the batches on the wire finish (at shutdown, before the client closes)."""
        if self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait(self._tasks, timeout=grace_s)


class GetBatcher:
    """Gathers ``get(op, key)`` calls of one loop turn; sends them with ``single`` or ``many``."""

    def __init__(self, single: Single, many: Many, *, is_skipped: Callable[[Any], bool]) -> None:
        self._single = single
        self._many = many
        self._is_skipped = is_skipped
        self._pending: list[tuple[str, str, asyncio.Future[Any]]] = []
        self._wire = _OnTheWire()

    async def get(self, op: str, key: str) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, key, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch = [item for item in self._pending if not item[2].done()]
        self._pending = []
        if not batch:
            return
        self._wire.send(self._send(batch))

    async def _send(self, batch: list[tuple[str, str, asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                op, key, fut = batch[0]
                replies: list[Any] = [await self._single(op, key)]
            else:
                got = await self._many([key for _, key, _ in batch])
                replies = [got] * len(batch) if self._is_skipped(got) else list(got)
        except BaseException as exc:  # never leave the callers hanging
            for _, _, fut in batch:
                if fut.done():
                    continue
                if isinstance(exc, Exception):
                    fut.set_exception(exc)
                else:
                    fut.cancel()
            raise
        for (_, _, fut), reply in zip(batch, replies, strict=True):
            if not fut.done():
                fut.set_result(reply)

    async def drain(self, grace_s: float) -> None:
        await self._wire.drain(grace_s)


class WriteBatcher(Generic[W]):
    """Gathers the writes of one loop turn; ``send`` puts them on the wire together.

    The same burst that queues its reads on the pool queues its writes too (each miss of
    a burst stores its embedding and result at nearly the same moment); a pipeline per
    turn takes one connection for all of them. Best effort like every cache write: the
    callers wait for the batch (a fill lands before its flight ends), never for an error.
    """

    def __init__(self, send: Callable[[list[W]], Awaitable[object]]) -> None:
        self._send = send
        self._pending: list[W] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wire = _OnTheWire()

    async def put(self, writes: Sequence[W]) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not self._waiters:
            loop.call_soon(self._flush)
        self._pending.extend(writes)
        self._waiters.append(fut)
        await fut

    def _flush(self) -> None:
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        self._wire.send(self._send_all(batch, waiters))

    async def _send_all(self, batch: list[W], waiters: list[asyncio.Future[None]]) -> None:
        try:
            await self._send(batch)
        finally:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def drain(self, grace_s: float) -> None:
        await self._wire.drain(grace_s)
