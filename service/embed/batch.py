"""Micro-batching: distinct texts that arrive together are embedded in one model call.

A model call has a fixed cost (thread hop, session run, padding) that a batch shares, so
under concurrency one call for 32 texts is much cheaper than 32 calls. But a batch that
waits on a timer makes every request pay the wait at light load, when nothing joins it.

So batches form only while the model is busy (opportunistic batching):

- **model idle**: a text opens a batch that is sent on the next turn of the event loop,
  so texts arriving in the same turn share it and a lone text waits for nothing;
- **model busy**: the batch collects texts until the running call finishes, and is sent
  then; at most ``max_wait_s`` after it opened, it is sent anyway, as a second call
  beside the running one (a bound on the added latency, and work for an idle core);
- a batch that reaches ``max_size`` distinct texts is sent at once.

Identical texts in one batch are embedded once. A caller that is cancelled leaves the
batch running for the others; an error reaches every caller of that batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import numpy as np

from service.embed.protocol import Embedder
from service.model import DIM, Vectors


class BatchingEmbedder:
    """Wraps an :class:`Embedder`; batches single-text calls, passes larger ones through."""

    def __init__(self, inner: Embedder, max_size: int, max_wait_s: float) -> None:
        if max_size < 1:
            raise ValueError(f"max_size={max_size} is invalid: expected >= 1")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s={max_wait_s} is invalid: expected >= 0")
        self.inner = inner
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._pending: dict[str, asyncio.Future[Vectors]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    @property
    def load_count(self) -> int:
        return int(getattr(self.inner, "load_count", int(self.inner.loaded)))

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if len(texts) != 1:
            # document writes arrive as one batch already
            return await self.inner.embed(texts)
        text = texts[0]
        fut = self._pending.get(text)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pending[text] = fut
            if len(self._pending) >= self.max_size:
                self._flush()
            elif self._timer is None:
                # idle: the next turn of the loop; busy: when the running call ends, or
                # at the latest after max_wait_s (see the module docstring)
                delay = self.max_wait_s if self._running else 0.0
                self._timer = asyncio.get_running_loop().call_later(delay, self._flush)
        row = await asyncio.shield(fut)
        return row.reshape(1, DIM)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A model call ended: the batch that gathered behind it goes now."""
        self._running.discard(task)
        if self._pending and not self._running:
            self._flush()

    async def _run(self, batch: dict[str, asyncio.Future[Vectors]]) -> None:
        texts = list(batch)
        try:
            vectors = await self.inner.embed(texts)
            if vectors.shape != (len(texts), DIM):
                raise RuntimeError(
                    f"embedder returned shape {vectors.shape} for {len(texts)} texts"
                )
        except asyncio.CancelledError:
            for fut in batch.values():
                fut.cancel()
            raise
        except Exception as exc:
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # read, so that an abandoned future is not logged
            return
        for row, fut in zip(np.asarray(vectors), batch.values(), strict=True):
            if not fut.done():
                fut.set_result(row)

    async def aclose(self) -> None:
        self._flush()
        for task in list(self._running):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 5.0)
        await self.inner.aclose()
