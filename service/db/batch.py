"""Searches of one turn of the event loop go to PostgreSQL as one statement.

An embedding batch (:mod:`service.embed.batch`) hands its vectors to all of its callers
in one turn of the loop, and each then asks PostgreSQL for its hits. Sent one by one,
every search pays a round trip: a socket write from the event loop, a wake-up of a
backend, and the statement's own start-up. :class:`SearchBatcher` lets the first
search of a turn wait until the turn's other searches have joined it (one
``asyncio.sleep(0)``: no task, no timer) and then runs them all in one statement
(:meth:`service.db.database.Database.search_many`: the same index scan per query, as
LATERAL subqueries). A lone search, the case of every request at light load, runs as
the plain statement; filtered searches and searches that need their own ``SET LOCAL``
are never batched.

The first caller runs the statement for everyone in its own task (a single-flight's,
which a client's disconnect does not cancel): its error, or its cancellation, reaches
every caller of the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.db.database import Database
from service.model import Row, Vectors

_Item = tuple[Vectors, int, "asyncio.Future[tuple[Row, ...]] | None"]


class SearchBatcher:
    """``search(vector, k, topic)`` as :meth:`Database.search`, batched per loop turn."""

    def __init__(self, db: Database, max_size: int = 64) -> None:
        if max_size < 1:
            raise ValueError(f"max_size={max_size} is invalid: expected >= 1")
        self.db = db
        self.max_size = max_size
        self._pending: list[_Item] = []

    async def search(self, vector: Vectors, k: int, topic: str | None = None) -> tuple[Row, ...]:
        if not self.db.batchable(k, topic):
            return await self.db.search(vector, k, topic)
        if self._pending and len(self._pending) < self.max_size:
            fut: asyncio.Future[tuple[Row, ...]] = asyncio.get_running_loop().create_future()
            self._pending.append((vector, k, fut))
            return await fut
        # the first search of this turn (or the batch is full: a new one)
        batch: list[_Item] = [(vector, k, None)]
        self._pending = batch
        await asyncio.sleep(0)  # the searches ready in this turn join the batch
        if self._pending is batch:
            self._pending = []
        if len(batch) == 1:
            return await self.db.search(vector, k, None)
        return await self._run(batch)

    async def _run(self, batch: Sequence[_Item]) -> tuple[Row, ...]:
        try:
            results = await self.db.search_many([(v, k) for v, k, _ in batch])
        except BaseException as exc:
            for _, _, fut in batch[1:]:
                if fut is not None and not fut.done():
                    if isinstance(exc, Exception):
                        fut.set_exception(exc)
                        fut.exception()  # read: a caller cancelled meanwhile is not logged
                    else:
                        fut.cancel()
            raise
        for (_, _, fut), rows in zip(batch[1:], results[1:], strict=True):
            if fut is not None and not fut.done():
                fut.set_result(rows)
        return results[0]
