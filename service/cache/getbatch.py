"""Single-key GETs issued in the same turn of the event loop go to Redis as one MGET, and
writes go behind the responses, batched into pipelines (:class:`WriteBehind`).

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


class WriteBehind(Generic[W]):
    """Writes sent behind the responses that made them: batched, bounded, best effort.

    A cache fill need not delay its response: the L1 holds the value at once, and other
    workers find it in Redis a few milliseconds later (or compute it once more). So a fill
    queues its writes here and returns. The queue is sent as one pipeline:

    - ``interval_s`` after its first write, or at the end of the loop turn in which it
      reached ``batch`` writes, whichever comes first;
    - at the end of the turn for a caller that waits for its writes (``wait=True``);
    - at most ``max_pending`` writes wait; beyond, new ones are dropped (``on_drop``).

    The same burst that queues its reads queues its writes too; one pipeline per batch
    takes one connection for all of them.
    """

    def __init__(
        self,
        send: Callable[[list[W]], Awaitable[object]],
        *,
        interval_s: float,
        batch: int,
        max_pending: int,
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        assert interval_s > 0, f"interval_s must be > 0, got {interval_s}"
        assert batch >= 1, f"batch must be >= 1, got {batch}"
        assert max_pending >= batch, f"max_pending must be >= batch, got {max_pending}"
        self._send = send
        self.interval_s = interval_s
        self.batch = batch
        self.max_pending = max_pending
        self._on_drop = on_drop
        self._pending: list[W] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a flush at the end of this turn is scheduled
        self._wire = _OnTheWire()

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, writes: Sequence[W], *, wait: bool = False) -> asyncio.Future[None] | None:
        """Queue ``writes``; with ``wait``, a future done once their batch was sent (None:
        dropped, the queue is full)."""
        if len(self._pending) + len(writes) > self.max_pending:
            self._on_drop(len(writes))
            return None
        loop = asyncio.get_running_loop()
        self._pending.extend(writes)
        fut: asyncio.Future[None] | None = None
        if wait:
            fut = loop.create_future()
            self._waiters.append(fut)
        if wait or len(self._pending) >= self.batch:
            if not self._soon:
                self._soon = True
                loop.call_soon(self._flush)
        elif self._timer is None:
            self._timer = loop.call_later(self.interval_s, self._flush)
        return fut

    def _flush(self) -> None:
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        if batch or waiters:
            self._wire.send(self._send_all(batch, waiters))

    async def _send_all(self, batch: list[W], waiters: list[asyncio.Future[None]]) -> None:
        try:
            if batch:
                await self._send(batch)
        finally:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def drain(self, grace_s: float) -> None:
        """Send what waits now, and let the batches on the wire finish (at shutdown)."""
        if self._pending or self._waiters:
            self._flush()
        await self._wire.drain(grace_s)
