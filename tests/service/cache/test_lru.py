"""The in-process L1 (``service.cache.lru``): size bound, recency, TTL with a fake clock."""

from __future__ import annotations

import pytest

from service.cache.lru import LRUCache


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_size_bound_evicts_the_least_recently_used() -> None:
    evicted: list[None] = []
    lru: LRUCache[str] = LRUCache(3, lambda: evicted.append(None), clock=FakeClock())
    for key in "abcd":
        lru.set(key, key.upper(), expires_at=2000.0)
    assert len(lru) == 3
    assert lru.get("a") is None
    assert [lru.get(k) for k in "bcd"] == ["B", "C", "D"]
    assert len(evicted) == 1


def test_a_get_makes_an_entry_recent() -> None:
    lru: LRUCache[int] = LRUCache(2, clock=FakeClock())
    lru.set("a", 1, expires_at=2000.0)
    lru.set("b", 2, expires_at=2000.0)
    assert lru.get("a") == 1  # "b" is now the oldest
    lru.set("c", 3, expires_at=2000.0)
    assert lru.get("b") is None
    assert lru.get("a") == 1
    assert lru.get("c") == 3


def test_overwriting_a_key_neither_grows_nor_evicts() -> None:
    evicted: list[None] = []
    lru: LRUCache[int] = LRUCache(2, lambda: evicted.append(None), clock=FakeClock())
    lru.set("a", 1, expires_at=2000.0)
    lru.set("b", 2, expires_at=2000.0)
    lru.set("a", 10, expires_at=2000.0)
    assert len(lru) == 2
    assert evicted == []
    assert lru.get("a") == 10


def test_entry_expires_at_its_deadline_by_the_injected_clock() -> None:
    clock = FakeClock(1000.0)
    evicted: list[None] = []
    lru: LRUCache[str] = LRUCache(10, lambda: evicted.append(None), clock=clock)
    lru.set("k", "v", expires_at=1060.0)
    clock.now = 1059.999
    assert lru.get("k") == "v"
    clock.now = 1060.0  # the deadline itself is expired
    assert lru.get("k") is None
    assert len(lru) == 0  # an expired entry is dropped when met
    assert evicted == []  # expiry is not a size eviction
    clock.now = 0.0
    assert lru.get("k") is None  # dropped, not just hidden


def test_explicit_now_overrides_the_clock() -> None:
    lru: LRUCache[str] = LRUCache(10, clock=FakeClock(1000.0))
    lru.set("k", "v", expires_at=1010.0)
    assert lru.get("k", now=1020.0) is None


def test_entries_expire_independently() -> None:
    clock = FakeClock(0.0)
    lru: LRUCache[int] = LRUCache(10, clock=clock)
    lru.set("short", 1, expires_at=5.0)
    lru.set("long", 2, expires_at=50.0)
    clock.now = 10.0
    assert lru.get("short") is None
    assert lru.get("long") == 2


def test_clear_empties() -> None:
    lru: LRUCache[int] = LRUCache(4, clock=FakeClock())
    lru.set("a", 1, expires_at=2000.0)
    lru.clear()
    assert len(lru) == 0
    assert lru.get("a") is None


def test_size_below_one_is_a_programming_error() -> None:
    with pytest.raises(AssertionError, match="size must be >= 1, got 0"):
        LRUCache(0)
