"""Delta validation of cached results: the write log, its Lua scripts and ``WriteLog.check``.

The pure checks use made-up vectors; the script tests run against a Valkey of their own.
End-to-end read-your-writes over HTTP is in ``test_cache_precise.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as aioredis

from service.api import SearchQuery
from service.cache import NAMESPACE, CacheConfig, CachedResult, SearchCache, bump_generation
from service.db import Hit
from service.embed import DIM
from service.metrics import Metrics
from service.writelog import WriteLog, WriteRecord
from tests.service.conftest import ValkeyFactory


def _unit(seed: int) -> np.ndarray:
    vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


def _towards(base: np.ndarray, cos: float, seed: int) -> np.ndarray:
    """A unit vector at cosine similarity ``cos`` to the unit vector ``base``."""
    other = _unit(seed)
    other -= float(other @ base) * base
    other /= np.linalg.norm(other)
    out = cos * base + np.sqrt(1 - cos**2) * other
    unit: np.ndarray = (out / np.linalg.norm(out)).astype(np.float32)
    return unit


QUERY = _unit(1)
# scores 0.9 .. 0.6: the k-th (worst) distance of this 4-hit list is 0.4
HITS = tuple(Hit(100 + i, f"doc {i}", 0.9 - 0.1 * i, "t/a") for i in range(4))


def _entry(gen: int = 10, hits: tuple[Hit, ...] = HITS) -> CachedResult:
    return CachedResult(hits, 0.01, 1e12, gen, QUERY.tobytes())


def _log(*records: WriteRecord, first: int = 11, size: int = 100) -> WriteLog:
    log = WriteLog(size)
    log.observe(first + len(records) - 1, [(first + n, r) for n, r in enumerate(records)])
    return log


def _insert(cos: float, topic: str = "t/a", doc_id: int = 500) -> WriteRecord:
    return WriteRecord.insert(doc_id, topic, _towards(QUERY, cos, seed=10_000 + doc_id))


def test_an_insert_ranking_inside_the_top_k_drops_the_entry() -> None:
    assert _log(_insert(0.7)).check(_entry(), 11, 4, None) == "insert"


def test_an_insert_behind_the_kth_distance_keeps_the_entry() -> None:
    log = _log(_insert(0.2), _insert(0.5, doc_id=501))
    assert log.check(_entry(), 12, 4, None) == "kept"


def test_an_insert_just_behind_the_kth_distance_still_counts_within_the_margin() -> None:
    assert _log(_insert(0.598)).check(_entry(), 11, 4, None) == "insert"


def test_any_matching_insert_drops_a_list_shorter_than_k() -> None:
    assert _log(_insert(-0.5)).check(_entry(), 11, 5, None) == "insert"


def test_topic_filter_ignores_inserts_of_other_topics() -> None:
    log = _log(_insert(0.95, topic="t/b"))
    assert log.check(_entry(), 11, 4, "t/a") == "kept"
    assert log.check(_entry(), 11, 4, None) == "insert"
    assert _log(_insert(0.95, topic="t/a")).check(_entry(), 11, 4, "t/a") == "insert"


def test_deleting_a_result_drops_the_entry_and_an_unrelated_delete_keeps_it() -> None:
    assert _log(WriteRecord("delete", 102)).check(_entry(), 11, 4, None) == "delete"
    assert _log(WriteRecord("delete", 999)).check(_entry(), 11, 4, None) == "kept"


def test_reset_and_gaps_drop_the_entry() -> None:
    log = _log(WriteRecord("delete", 999), WriteRecord("reset"))
    assert log.check(_entry(), 12, 4, None) == "reset"
    # record 11 missing (trimmed, or never read): unknown counts as changed
    assert _log(WriteRecord("delete", 999), first=12).check(_entry(), 12, 4, None) == "gap"
    # wider than the log can hold
    log = _log(*[WriteRecord("delete", 999)] * 3, size=2)
    assert len(log) == 2
    assert log.check(_entry(), 13, 4, None) == "gap"


def test_an_entry_without_a_vector_survives_deletes_but_no_matching_insert() -> None:
    entry = CachedResult(HITS, 0.01, 1e12, 10, b"")
    assert _log(WriteRecord("delete", 999)).check(entry, 11, 4, None) == "kept"
    assert _log(_insert(-0.9)).check(entry, 11, 4, None) == "insert"


def test_a_generation_far_below_the_top_forgets_the_records() -> None:
    log = _log(WriteRecord("delete", 999), first=10_000)
    log.observe(9_990, [])  # a late answer of a concurrent read: keep
    assert (len(log), log.top) == (1, 10_000)
    log.observe(5, [])  # the generation key started a new life
    assert (len(log), log.top) == (0, 5)


def test_records_round_trip_and_bad_ones_are_refused() -> None:
    rec = _insert(0.3, topic="x/y z")
    gen, back = WriteRecord.decode_logged(b"4503599627370497 " + rec.encode())
    assert (gen, back) == (4503599627370497, rec)
    with pytest.raises(ValueError, match="kind 'update' is invalid"):
        WriteRecord("update")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="document 3 has a 4-byte vector"):
        WriteRecord("insert", 3, "t", b"\0\0\0\0")


def test_cached_results_round_trip_with_generation_and_vector() -> None:
    entry = _entry(gen=4503599627370000)
    assert CachedResult.decode(entry.encode()) == entry


# ------------------------------------------------------------------ against Valkey


def _config(log_size: int, validate: bool = True) -> CacheConfig:
    return CacheConfig(
        results=True,
        l1=True,
        l1_size=100,
        l1_ttl_s=60,
        result_ttl_s=60,
        embedding_ttl_s=60,
        ttl_jitter=0,
        embeddings=False,
        redis_timeout_s=1.0,
        breaker_failures=5,
        breaker_cooldown_s=1,
        xfetch_beta=0,
        lock=False,
        lock_ttl_ms=100,
        validate=validate,
        log_size=log_size,
    )


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_writes_log_one_record_per_generation_and_reads_bring_them_back(
    cache_valkey_factory: ValkeyFactory,
) -> None:
    valkey = cache_valkey_factory(None)
    client = aioredis.Redis.from_url(valkey.url)
    cache = SearchCache(_config(log_size=5), client, Metrics(), "fp", "model")
    other = SearchCache(_config(log_size=5), client, Metrics(), "fp", "model")
    try:
        g0 = await cache.generation()
        assert g0 is not None
        assert g0 > 2**40  # a random 52-bit start: '%d' in Lua must keep every digit
        last = await other.bump("write", [_insert(0.1, doc_id=1), WriteRecord("delete", 7)])
        assert last == g0 + 2
        assert await cache.generation() == last
        assert cache.write_log.top == last
        assert cache.write_log.check(_entry(g0), last, 4, None) == "kept"
        # six more (one reset): the log keeps five, so g0's successors are gone
        for n in range(5):
            await other.bump("write", [WriteRecord("delete", 1000 + n)])
        top = await other.bump("admin")
        assert top == last + 6
        fresh = SearchCache(_config(log_size=5), client, Metrics(), "fp", "model")
        assert await fresh.generation() == top
        assert len(fresh.write_log) == 5
        assert fresh.write_log.check(_entry(last), top, 4, None) == "gap"
        assert fresh.write_log.check(_entry(top - 2), top, 4, None) == "reset"
        assert await client.llen(f"{NAMESPACE}:log") == 5
        # the loader's bump logs a reset too
        loaded = await bump_generation(valkey.url, log_size=5)
        assert loaded == top + 1
        assert await fresh.generation() == loaded
        assert fresh.write_log.check(_entry(top), loaded, 4, None) == "reset"
    finally:
        await client.aclose()


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_validated_entry_is_served_restamped_and_a_changed_one_is_not(
    cache_valkey_factory: ValkeyFactory,
) -> None:
    valkey = cache_valkey_factory(None)
    client = aioredis.Redis.from_url(valkey.url)
    metrics = Metrics()
    cache = SearchCache(_config(log_size=100), client, metrics, "fp", "model")
    off = SearchCache(_config(log_size=100, validate=False), client, Metrics(), "fp", "model")
    query = SearchQuery("some query", 4, None)
    key = cache.result_key(query)
    try:
        g0 = await cache.generation()
        assert g0 is not None
        await cache.fill(g0, key, HITS, 0.01, QUERY)
        g1 = await cache.bump("write", [_insert(0.2)])
        assert g1 is not None
        assert await cache.generation() == g1
        entry = cache.l1_get(g1, key, query)
        assert entry is not None
        assert entry.gen == g1  # re-stamped: the next lookup needs no check
        assert (await cache.redis_get(g1, key, query)) is not None
        assert metrics.cache_validations.labels("kept")._value.get() == 2
        assert await off.generation() == g1
        assert await off.redis_get(g1, key, query) is None  # validation off: old behaviour
        g2 = await cache.bump("write", [WriteRecord("delete", HITS[0].id)])
        assert g2 is not None
        assert await cache.generation() == g2
        assert cache.l1_get(g2, key, query) is None
        assert await cache.redis_get(g2, key, query) is None
        assert metrics.cache_validations.labels("delete")._value.get() == 2
    finally:
        await client.aclose()
