"""The engine's Redis round trips, against a real Valkey and PostgreSQL: a miss reads once
(the generation read brings the result and the embedding) and writes behind its answer
(result + new embedding, batched with other fills); a failed call bypasses what it
carried, is counted once, and never raises."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import pytest
import redis.asyncio as aioredis

from service.model import SearchQuery
from service.search import SearchResult
from tests.service.cache.wire import total
from tests.service.conftest import CacheStack, CacheValkey
from tests.service.engine_rig import EngineParts, command_calls, more, start_engine, unique

pytestmark = [pytest.mark.stack, pytest.mark.timeout(60)]


@dataclass(frozen=True)
class Worker(EngineParts):
    """One engine as a worker process runs it, with its Redis round trips counted."""

    async def search(self, text: str, k: int = 5) -> SearchResult:
        return await self.engine.search(SearchQuery(text, k, None))

    def keys_of(self, text: str, k: int = 5) -> tuple[str, str]:
        """The Redis keys of the result and of the embedding of ``text``."""
        query = SearchQuery(text, k, None)
        result = self.cache.results.redis_key(self.cache.result_key(query))
        return result, self.cache.embeddings.key(query.normalised)


WorkerFactory = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def worker(cache_stack: CacheStack, valkey: CacheValkey) -> AsyncIterator[WorkerFactory]:
    """Start an engine on the cache tests' database and this test's Valkey."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**env: str) -> Worker:
            p = await start_engine(stack, cache_stack.database_url, valkey.url, **env)
            w = Worker(p.engine, p.cache, p.metrics, p.wire, p.settings)
            # the first search loads the read script (NOSCRIPT, SCRIPT LOAD) and connects:
            # not counted, nor its write behind
            await w.search(unique("warm up"), 3)
            await w.cache.link.flush()
            w.wire.sends = 0
            return w

        yield start


async def test_a_miss_reads_once_and_writes_behind_and_a_repeat_is_an_l1_hit(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    w = await worker(SEARCH_REDIS_TIMEOUT_MS="2000")
    text = unique("telescope galaxies")
    before = await command_calls(observer)
    w.wire.stall_sets_s = 0.5  # a write on the critical path would show as half a second
    start = time.perf_counter()
    first = await w.search(text)
    elapsed = time.perf_counter() - start
    # one round trip before the answer: the generation read, which brought the result
    # and the embedding (both missing)
    assert first.source == "computed"
    assert elapsed < 0.4, elapsed
    assert w.wire.sends <= 2  # the read, and perhaps the write behind it (stalled)
    result_key, embedding_key = w.keys_of(text)
    assert await observer.exists(result_key) == 0
    await w.cache.link.flush()
    w.wire.stall_sets_s = 0.0
    after = await command_calls(observer)
    assert w.wire.sends == 2  # the read, and one write of the result and the embedding
    # (commandstats counts the GETs inside the read script too: generation, result,
    # embedding)
    assert more(before, after, "evalsha", "get", "set") == {"evalsha": 1, "get": 3, "set": 2}
    assert w.model_calls() == 2  # the warm-up's and this one
    # the write landed behind the answer, with the TTLs (ms) configured
    assert await observer.pttl(result_key) > 0
    assert await observer.pttl(embedding_key) > 0
    w.wire.sends = 0
    again = await w.search(text)
    assert again.source == "l1"
    assert again.hits == first.hits
    assert w.wire.sends == 1  # the generation read only
    assert w.model_calls() == 2


async def test_a_value_written_behind_is_found_by_a_later_request_of_another_worker(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    """The write goes behind the answer, within a few milliseconds: the next request of
    this worker finds the L1 at once, another worker (one Valkey) finds the Redis copy."""
    a, b = await worker(), await worker()
    text = unique("lantern festival")
    computed = await a.search(text)
    assert computed.source == "computed"
    assert (await a.search(text)).source == "l1"
    result_key, _ = a.keys_of(text)
    for _ in range(100):  # sent 5 ms after the fill at the latest, plus a round trip
        if await observer.exists(result_key):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the write behind the answer never reached Valkey")
    model, searches = b.model_calls(), b.db_searches()
    found = await b.search(text)
    assert found.source == "redis"
    assert found.hits == computed.hits
    assert (b.model_calls(), b.db_searches()) == (model, searches)


async def test_writes_behind_are_dropped_while_the_breaker_is_open(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    w = await worker(SEARCH_BREAKER_FAILURES="1", SEARCH_BREAKER_COOLDOWN_S="60")
    text = unique("breaker drops")
    query = SearchQuery(text, 5, None)
    lookup = w.cache.at(await w.cache.generation() or 0, query)
    w.cache.breaker.failure()  # open
    dropped = total(w.metrics.cache_writes_dropped, reason="breaker")
    await lookup.fill((), 0.01, np.zeros((1, 384), dtype=np.float32))
    assert total(w.metrics.cache_writes_dropped, reason="breaker") == dropped + 1
    assert lookup.l1_get() is not None  # the L1 holds it all the same
    await w.cache.link.flush()
    result_key, _ = w.keys_of(text)
    assert await observer.exists(result_key) == 0


async def test_an_l2_hit_skips_the_model_and_a_new_k_reuses_the_embedding(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    a, b = await worker(), await worker()  # two workers, one Valkey
    text = unique("sourdough oven")
    computed = await a.search(text, k=5)
    await a.cache.link.flush()
    model, searches = b.model_calls(), b.db_searches()

    hit = await b.search(text, k=5)
    assert hit.source == "redis"
    assert hit.hits == computed.hits
    assert b.wire.sends == 1  # the generation read brought it
    assert (b.model_calls(), b.db_searches()) == (model, searches)

    # another k: another result, the same embedding, found in Redis in the same read
    b.wire.sends = 0
    before = await command_calls(observer)
    other_k = await b.search(text, k=3)
    await b.cache.link.flush()
    after = await command_calls(observer)
    assert other_k.source == "computed"
    assert [h.id for h in other_k.hits] == [h.id for h in computed.hits[:3]]
    assert b.wire.sends == 2  # the read; the write behind
    assert more(before, after, "get", "set") == {"get": 3, "set": 1}  # no embedding SET
    assert (b.model_calls(), b.db_searches()) == (model, searches + 1)
    assert total(b.metrics.cache_hits, cache="embedding", layer="redis") == 1

    # a third k: the embedding is in b's L1 now, so the read asks for the result only
    b.wire.sends = 0
    before = await command_calls(observer)
    assert (await b.search(text, k=2)).source == "computed"
    await b.cache.link.flush()
    after = await command_calls(observer)
    assert b.wire.sends == 2
    assert more(before, after, "get", "set") == {"get": 2, "set": 1}
    assert b.model_calls() == model
    assert total(b.metrics.cache_hits, cache="embedding", layer="l1") == 1


async def test_a_value_of_the_wrong_type_is_a_decode_error_and_the_fill_replaces_it(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    a = await worker()
    w = await worker(SEARCH_BREAKER_FAILURES="1", SEARCH_BREAKER_COOLDOWN_S="60")
    text = unique("quokka harmonics")
    await a.search(text, k=3)  # Redis holds the embedding of ``text``
    await a.cache.link.flush()
    result_key, _ = w.keys_of(text)
    await observer.rpush(result_key, b"not a string")  # a GET of it: WRONGTYPE
    model = w.model_calls()
    decode_errors = total(w.metrics.redis_errors, op="decode")
    res = await w.search(text)
    # the read went through (the other values are good): the result is a miss counted
    # as a decode error, the embedding a hit, and the breaker stays closed
    assert res.source == "computed"
    assert len(res.hits) == 5
    assert total(w.metrics.redis_errors, op="decode") == decode_errors + 1
    assert w.cache.breaker.state == "closed"
    assert w.model_calls() == model  # the embedding came with the read
    await w.cache.link.flush()
    assert await observer.type(result_key) == b"string"  # the fill's SET replaced it
    assert (await a.search(text)).source == "redis"


async def test_a_read_that_times_out_bypasses_the_cache_within_the_timeout(
    worker: WorkerFactory,
) -> None:
    a = await worker()
    w = await worker(SEARCH_REDIS_TIMEOUT_MS="100")
    text = unique("marmalade cobblestone")
    await a.search(text)  # Redis holds the result and the embedding
    await a.cache.link.flush()
    searches = w.db_searches()
    w.wire.stall_scripts_s = 2.0
    start = time.perf_counter()
    res = await w.search(text)
    elapsed = time.perf_counter() - start
    w.wire.stall_scripts_s = 0.0
    assert res.source == "bypass"  # the generation is unknown: nothing may be served
    assert elapsed < 1.0  # bounded by the 100 ms timeout, not the 2 s stall
    assert total(w.metrics.redis_errors, op="gen") == 1
    assert w.db_searches() == searches + 1  # computed (the embedding cache still works)
    assert (await w.search(text)).source == "redis"  # the next read works


async def test_the_cross_worker_lock_path_reads_and_writes_once(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    w = await worker(SEARCH_REDIS_LOCK_ENABLED="1")
    text = unique("jazz harmonics")
    acquired = total(w.metrics.redis_lock, outcome="acquired")
    before = await command_calls(observer)
    res = await w.search(text)
    after = await command_calls(observer)
    assert res.source == "computed"
    # the generation read (with the result and the embedding), the lock (SET NX with a
    # token), the write (before the unlock: the workers waiting look in Redis), the
    # unlock (a script: GET, and DEL if the token is still ours)
    assert w.wire.sends == 4
    assert more(before, after, "evalsha", "get", "set", "del") == {
        "evalsha": 2,
        "get": 4,
        "set": 3,
        "del": 1,
    }
    assert total(w.metrics.redis_lock, outcome="acquired") == acquired + 1
    assert w.model_calls() == 2  # the warm-up's and this one
    assert (await w.search(text)).source == "l1"
