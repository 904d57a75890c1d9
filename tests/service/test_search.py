"""The engine's Redis round trips, against a real Valkey and PostgreSQL: after the
generation read a miss reads once (result + embedding) and writes once (result + new
embedding); a failed call bypasses what it carried, is counted once, and never raises."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

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
            # the first search loads the read script (NOSCRIPT, SCRIPT LOAD): not counted
            await w.search(unique("warm up"), 3)
            w.wire.sends = 0
            return w

        yield start


async def test_a_miss_reads_once_and_writes_once_and_a_repeat_is_an_l1_hit(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    w = await worker()
    text = unique("telescope galaxies")
    before = await command_calls(observer)
    first = await w.search(text)
    after = await command_calls(observer)
    # the generation read, one read (result + embedding), one write (result + embedding);
    # it was five: the generation read, then GET, GET, SET, SET each awaited in turn
    assert first.source == "computed"
    assert w.wire.sends == 3
    # (commandstats counts the GET inside the read script too)
    assert more(before, after, "evalsha", "get", "set") == {"evalsha": 1, "get": 3, "set": 2}
    assert w.model_calls() == 2  # the warm-up's and this one
    # the write landed before the search returned, with the TTLs (ms) configured
    result_key, embedding_key = w.keys_of(text)
    assert await observer.pttl(result_key) > 0
    assert await observer.pttl(embedding_key) > 0
    w.wire.sends = 0
    again = await w.search(text)
    assert again.source == "l1"
    assert again.hits == first.hits
    assert w.wire.sends == 1  # the generation read only
    assert w.model_calls() == 2


async def test_an_l2_hit_skips_the_model_and_a_new_k_reuses_the_embedding(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    a, b = await worker(), await worker()  # two workers, one Valkey
    text = unique("sourdough oven")
    computed = await a.search(text, k=5)
    model, searches = b.model_calls(), b.db_searches()

    hit = await b.search(text, k=5)
    assert hit.source == "redis"
    assert hit.hits == computed.hits
    assert b.wire.sends == 2  # the generation read, one read
    assert (b.model_calls(), b.db_searches()) == (model, searches)

    # another k: another result, the same embedding, found in Redis in the same read
    b.wire.sends = 0
    before = await command_calls(observer)
    other_k = await b.search(text, k=3)
    after = await command_calls(observer)
    assert other_k.source == "computed"
    assert [h.id for h in other_k.hits] == [h.id for h in computed.hits[:3]]
    assert b.wire.sends == 3
    assert more(before, after, "get", "set") == {"get": 3, "set": 1}  # no embedding SET
    assert (b.model_calls(), b.db_searches()) == (model, searches + 1)
    assert total(b.metrics.cache_hits, cache="embedding", layer="redis") == 1

    # a third k: the embedding is in b's L1 now, so the read is a plain GET
    b.wire.sends = 0
    before = await command_calls(observer)
    assert (await b.search(text, k=2)).source == "computed"
    after = await command_calls(observer)
    assert b.wire.sends == 3
    assert more(before, after, "get", "set") == {"get": 2, "set": 1}
    assert b.model_calls() == model
    assert total(b.metrics.cache_hits, cache="embedding", layer="l1") == 1


async def test_an_error_reply_fails_the_whole_read_once_and_the_request_is_answered(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    a = await worker()
    w = await worker(SEARCH_BREAKER_FAILURES="1", SEARCH_BREAKER_COOLDOWN_S="60")
    text = unique("quokka harmonics")
    await a.search(text, k=3)  # Redis holds the embedding of ``text``
    result_key, _ = w.keys_of(text)
    await observer.rpush(result_key, b"not a string")  # GET of it: WRONGTYPE
    model = w.model_calls()
    redis_misses = total(w.metrics.cache_misses, cache="embedding", layer="redis")
    l1_misses = total(w.metrics.cache_misses, cache="embedding", layer="l1")
    res = await w.search(text)
    assert res.source == "computed"
    assert len(res.hits) == 5
    # one failed call: both layers missed (the embedding too, so the model ran), the
    # breaker opened, and the write was skipped as one call (it was three: GET, SET, SET)
    assert total(w.metrics.redis_errors, op="get") == 1
    assert total(w.metrics.redis_skipped) == 1
    assert w.cache.breaker.state == "open"
    assert w.model_calls() == model + 1
    assert w.wire.sends == 2  # the generation read and the failed read
    # the embedding L1 missed (counted); its Redis lookup failed (not a miss: an error)
    assert total(w.metrics.cache_misses, cache="embedding", layer="l1") == l1_misses + 1
    assert total(w.metrics.cache_misses, cache="embedding", layer="redis") == redis_misses


async def test_a_read_that_times_out_is_a_miss_and_the_write_still_lands(
    worker: WorkerFactory, observer: aioredis.Redis
) -> None:
    a = await worker()
    w = await worker(SEARCH_REDIS_TIMEOUT_MS="100")
    text = unique("marmalade cobblestone")
    await a.search(text)  # Redis holds the result and the embedding
    model = w.model_calls()
    w.wire.stall_gets_s = 2.0
    start = time.perf_counter()
    res = await w.search(text)
    elapsed = time.perf_counter() - start
    w.wire.stall_gets_s = 0.0
    assert res.source == "computed"
    assert elapsed < 1.0  # bounded by the 100 ms timeout, not the 2 s stall
    assert total(w.metrics.redis_errors, op="get") == 1
    assert w.model_calls() == model + 1
    assert w.wire.sends == 3  # the write went out (SETs only) and closed the breaker
    assert w.cache.breaker.state == "closed"
    assert (await w.search(text)).source == "l1"


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
    # the generation read, the read, the lock (SET NX with a token), the write, the unlock
    # (a script: GET, and DEL if the token is still ours)
    assert w.wire.sends == 5
    assert more(before, after, "evalsha", "get", "set", "del") == {
        "evalsha": 2,
        "get": 4,
        "set": 3,
        "del": 1,
    }
    assert total(w.metrics.redis_lock, outcome="acquired") == acquired + 1
    assert w.model_calls() == 2  # the warm-up's and this one
    assert (await w.search(text)).source == "l1"
