"""Garbage-collector tuning and pause measurement.

At start-up (after the app is ready) the lifespan collects once and calls ``gc.freeze()``:
the objects built at start-up (modules, settings, the pool, the model) move to the
permanent generation, so later full collections no longer walk them. ``SEARCH_GC_THRESHOLDS``
(``700,10,10`` style) sets ``gc.set_threshold``. Every collection's pause is timed through
``gc.callbacks`` into a histogram by generation (``search_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any


class GcMonitor:
    """Times every collection; ``flush()`` hands the pauses to ``observe(generation, s)``.

    The callback only appends to a list: a collection can start anywhere, including inside
    prometheus_client while it holds its (non-reentrant) multiprocess lock, so observing a
    metric from the callback itself deadlocks the worker (seen under load). The lifespan
    flushes once a second.
    """

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self._observe = observe
        self._start = 0.0
        self._installed = False
        self._pending: list[tuple[int, float]] = []

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start:
            self._pending.append(
                (int(info.get("generation", 0)), time.perf_counter() - self._start)
            )
            self._start = 0.0

    def flush(self) -> int:
        """Observe the pauses recorded since the last flush; return how many."""
        pending, self._pending = self._pending, []
        for generation, seconds in pending:
            self._observe(generation, seconds)
        return len(pending)

    async def flush_every(self, interval_s: float) -> None:
        """Flush forever (a task of the lifespan, cancelled at shutdown)."""
        while True:
            await asyncio.sleep(interval_s)
            self.flush()

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False


def configure(thresholds: tuple[int, int, int] | None) -> None:
    """Apply ``SEARCH_GC_THRESHOLDS`` (None keeps the interpreter's)."""
    if thresholds is not None:
        gc.set_threshold(*thresholds)


def freeze_startup_objects() -> int:
    """Collect once, then move every surviving object to the permanent generation."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def state() -> dict[str, Any]:
    """This process's collector settings (the pause figures come from the metrics)."""
    return {
        "thresholds": list(gc.get_threshold()),
        "frozen_objects": gc.get_freeze_count(),
        "counts": list(gc.get_count()),
    }
