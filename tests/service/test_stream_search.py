"""Encoded stream results and their byte-bounded cache (pure: no server)."""

from __future__ import annotations

import orjson
import pytest

from service.cache.results import CachedResult
from service.model import Hit
from service.stream_search import EncodedResult, StreamCache, encode


def _result(n: int, *, expires_at: float = 1e12, title: str = "t") -> CachedResult:
    hits = tuple(Hit(i, f"{title} {i}", 1.0 - i / 1000, "misc/x") for i in range(n))
    return CachedResult(hits, 0.01, expires_at, gen=5, vector=b"")


def test_encode_gives_the_same_json_per_batch_as_the_hits_dicts() -> None:
    result = _result(120)
    encoded = encode(result, 50)
    assert [len(orjson.loads(b)) for b in encoded.batches] == [50, 50, 20]
    decoded = [row for b in encoded.batches for row in orjson.loads(b)]
    assert decoded == [h.as_dict() for h in result.hits]
    assert encoded.count == 120
    assert encoded.nbytes > sum(len(b) for b in encoded.batches)


def test_an_empty_result_has_no_batches() -> None:
    assert encode(_result(0), 50).batches == ()


def _entry(n: int, **kw: object) -> EncodedResult:
    return encode(_result(n, **kw), 50)  # type: ignore[arg-type]


def test_the_cache_evicts_least_recently_used_entries_beyond_its_byte_budget() -> None:
    size = _entry(100).nbytes
    evicted: list[int] = []
    cache = StreamCache(budget_bytes=size * 3, ttl_s=60, on_evict=lambda: evicted.append(1))
    for key in "abc":
        assert cache.put(key, _entry(100))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", _entry(100))
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in "acd")
    assert evicted == [1]
    assert cache.bytes <= cache.budget
    assert cache.bytes == sum(v.nbytes for v in (_entry(100),) * 3)


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    cache = StreamCache(budget_bytes=1000, ttl_s=60)
    assert not cache.put("big", _entry(500))
    assert len(cache) == 0
    assert cache.bytes == 0


def test_replacing_a_key_accounts_its_bytes_once() -> None:
    cache = StreamCache(budget_bytes=10**7, ttl_s=60)
    cache.put("a", _entry(100))
    cache.put("a", _entry(10))
    assert cache.bytes == _entry(10).nbytes
    cache.discard("a")
    assert cache.bytes == 0


@pytest.mark.parametrize(("expires_at", "ttl_s"), [(1005.0, 60.0), (1e12, 5.0)])
def test_entries_expire_at_their_result_expiry_or_the_ttl_whichever_is_first(
    expires_at: float, ttl_s: float
) -> None:
    now = [1000.0]
    cache = StreamCache(budget_bytes=10**7, ttl_s=ttl_s, clock=lambda: now[0])
    cache.put("a", _entry(10, expires_at=expires_at))
    now[0] = 1004.9
    assert cache.get("a") is not None
    now[0] = 1005.0
    assert cache.get("a") is None
    assert cache.bytes == 0
