"""The write and read Lua scripts against a Valkey of the test's own: one record per
generation, reads bring the missing ones back, and validated entries are re-stamped."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from service.cache.generation import NAMESPACE, bump_generation
from service.cache.search_cache import CacheConfig, SearchCache
from service.cache.writelog import WriteRecord
from service.metrics import Metrics
from service.model import SearchQuery, rows_of
from tests.service.cache.records import HITS, QUERY, cached, insert_record
from tests.service.conftest import ValkeyFactory


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
        last = await other.bump("write", [insert_record(0.1, doc_id=1), WriteRecord("delete", 7)])
        assert last == g0 + 2
        assert await cache.generation() == last
        assert cache.write_log.top == last
        assert cache.write_log.check(cached(g0), last, 4, None) == "kept"
        # six more (one reset): the log keeps five, so g0's successors are gone
        for n in range(5):
            await other.bump("write", [WriteRecord("delete", 1000 + n)])
        top = await other.bump("admin")
        assert top == last + 6
        fresh = SearchCache(_config(log_size=5), client, Metrics(), "fp", "model")
        assert await fresh.generation() == top
        assert len(fresh.write_log) == 5
        assert fresh.write_log.check(cached(last), top, 4, None) == "gap"
        assert fresh.write_log.check(cached(top - 2), top, 4, None) == "reset"
        assert await client.llen(f"{NAMESPACE}:log") == 5
        # the loader's bump logs a reset too
        loaded = await bump_generation(valkey.url, log_size=5)
        assert loaded == top + 1
        assert await fresh.generation() == loaded
        assert fresh.write_log.check(cached(top), loaded, 4, None) == "reset"
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
        assert cache.at(g0, query).key == key  # the lookup carries the result key
        await cache.at(g0, query).fill(rows_of(HITS), 0.01, QUERY)
        await cache.link.flush()  # the Redis write goes behind; the test reads it below
        g1 = await cache.bump("write", [insert_record(0.2)])
        assert g1 is not None
        assert await cache.generation() == g1
        entry = cache.at(g1, query).l1_get()
        assert entry is not None
        assert entry.gen == g1  # re-stamped: the next lookup needs no check
        assert (await cache.at(g1, query).redis_get()) is not None
        assert metrics.cache_validations.labels("kept")._value.get() == 2
        assert await off.generation() == g1
        assert await off.at(g1, query).redis_get() is None  # validation off: old behaviour
        g2 = await cache.bump("write", [WriteRecord("delete", HITS[0].id)])
        assert g2 is not None
        assert await cache.generation() == g2
        assert cache.at(g2, query).l1_get() is None
        assert await cache.at(g2, query).redis_get() is None
        assert metrics.cache_validations.labels("delete")._value.get() == 2
    finally:
        await client.aclose()
