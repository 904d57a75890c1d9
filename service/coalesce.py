"""Single-flight: concurrent identical requests in one process share one computation.

The computation runs in a task of its own, so that neither a waiter that disconnects
(its task cancelled) nor the first caller being cancelled stops the shared work: every
caller awaits it through :func:`asyncio.shield`. Every caller gets the same result or
the same exception. The key is forgotten once the computation finishes, so a later
request starts afresh (by then the cache holds the result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Share one in-flight computation per key; ``enabled=False`` computes per call."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        self.enabled = enabled
        self._flights: dict[Hashable, asyncio.Task[T]] = {}
        self._waiters: dict[Hashable, int] = {}
        # called with the number of callers that shared a computation, when it ends
        self._on_done = on_done

    def __len__(self) -> int:
        return len(self._flights)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._flights

    async def do(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run ``compute`` once for all concurrent callers of ``key``.

        Returns the result and whether this caller joined a computation another started.
        """
        if not self.enabled:
            return await compute(), False
        task = self._flights.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key, compute))
            task.add_done_callback(_retrieve)
            self._flights[key] = task
            self._waiters[key] = 0
        self._waiters[key] = self._waiters.get(key, 0) + 1
        return await asyncio.shield(task), joined

    async def _run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            return await compute()
        finally:
            self._flights.pop(key, None)
            waiters = self._waiters.pop(key, 0)
            if self._on_done is not None:
                self._on_done(waiters)


def _retrieve(task: asyncio.Task[T]) -> None:
    # When every caller was cancelled nobody reads the outcome; reading it here keeps
    # asyncio from logging "exception was never retrieved" for an error nobody awaits.
    if not task.cancelled():
        task.exception()
