"""The in-process L1: a bounded LRU whose entries also expire."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


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
