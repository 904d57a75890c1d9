"""Encoded stream results and their byte-bounded cache (pure: no server); a stream's
Redis round trips, against a real Valkey and PostgreSQL: a miss reads once (the
generation read brings the result and the embedding) and writes behind (result + new
embedding), as a ``/v1/search`` miss does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
import pytest
import redis.asyncio as aioredis

from service.cache.results import CachedResult
from service.http.app import stream_search
from service.limits import Bound
from service.model import Hit, SearchQuery
from service.stream_search import EncodedResult, StreamCache, StreamSearch, encode
from tests.service.cache.wire import total
from tests.service.conftest import CacheStack, CacheValkey
from tests.service.engine_rig import EngineParts, command_calls, more, start_engine, unique


def _result(n: int, *, expires_at: float = 1e12, title: str = "t") -> CachedResult:
    hits = tuple(Hit(i, f"{title} {i}", 1.0 - i / 1000, "misc/x") for i in range(n))
    return CachedResult.of(hits, 0.01, expires_at, gen=5, vector=b"")


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


# ---------------------------------------------------------------- round trips (servers)

FILL_MAX_K = 100  # SEARCH_STREAM_CACHE_MAX_K's default: k above it is not filled


@dataclass(frozen=True)
class StreamWorker(EngineParts):
    """One worker's streams as the app builds them, with its Redis round trips counted."""

    streams: StreamSearch
    bound: Bound

    async def stream(self, text: str, k: int = 5) -> EncodedResult:
        return await self.streams.result(SearchQuery(text, k, None))


StreamWorkerFactory = Callable[..., Awaitable[StreamWorker]]


@pytest.fixture
async def stream_worker(
    cache_stack: CacheStack, valkey: CacheValkey
) -> AsyncIterator[StreamWorkerFactory]:
    """Start streams over an engine on the cache tests' database and this test's Valkey."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**env: str) -> StreamWorker:
            p = await start_engine(stack, cache_stack.database_url, valkey.url, **env)
            assert p.settings.stream_cache_max_k == FILL_MAX_K
            streams = stream_search(p.engine, p.settings, p.metrics)  # as the app does
            w = StreamWorker(
                p.engine, p.cache, p.metrics, p.wire, p.settings, streams, streams.query_bound
            )
            # the first lookup loads the read script (NOSCRIPT, SCRIPT LOAD): not counted
            await w.stream(unique("warm up"), 3)
            await w.cache.link.flush()
            w.wire.sends = 0
            return w

        yield start


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_stream_miss_reads_once_and_writes_behind(
    stream_worker: StreamWorkerFactory, observer: aioredis.Redis
) -> None:
    w = await stream_worker()
    text = unique("lighthouse keepers")
    model, searches = w.model_calls(), w.db_searches()
    before = await command_calls(observer)
    first = await w.stream(text)
    await w.cache.link.flush()
    after = await command_calls(observer)
    assert first.count == 5
    # the generation read (with the result and the embedding), one write behind (result
    # + embedding)
    assert w.wire.sends == 2
    # (commandstats counts the GETs inside the read script too)
    assert more(before, after, "evalsha", "get", "set") == {"evalsha": 1, "get": 3, "set": 2}
    assert (w.model_calls(), w.db_searches()) == (model + 1, searches + 1)
    assert w.bound.held == 0
    # the same stream again: the stream cache, after the generation read
    w.wire.sends = 0
    again = await w.stream(text)
    assert again.batches == first.batches
    assert w.wire.sends == 1
    # the fill landed in Redis, for /v1/search and the other workers
    shared = await w.engine.search(SearchQuery(text, 5, None))
    assert shared.source == "l1"  # this worker's L1, filled with the stream's result
    assert orjson.loads(first.batches[0]) == [h.as_dict() for h in shared.hits]


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_stream_of_a_known_embedding_reads_it_with_the_result(
    stream_worker: StreamWorkerFactory, observer: aioredis.Redis
) -> None:
    a, b = await stream_worker(), await stream_worker()  # two workers, one Valkey
    text = unique("glacier moraine")
    computed = await a.stream(text, k=5)
    await a.cache.link.flush()
    model, searches = b.model_calls(), b.db_searches()
    # the same k on another worker: the result from Redis, no computation
    hit = await b.stream(text, k=5)
    assert hit.batches == computed.batches
    assert b.wire.sends == 1  # the generation read brought it
    assert (b.model_calls(), b.db_searches()) == (model, searches)
    # another k: the embedding came with the generation read; the write is the result
    b.wire.sends = 0
    before = await command_calls(observer)
    other = await b.stream(text, k=3)
    await b.cache.link.flush()
    after = await command_calls(observer)
    assert other.count == 3
    assert b.wire.sends == 2
    assert more(before, after, "get", "set") == {"get": 3, "set": 1}
    assert (b.model_calls(), b.db_searches()) == (model, searches + 1)
    assert total(b.metrics.cache_hits, cache="embedding", layer="redis") == 1


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_large_k_stream_reads_only_the_embedding(
    stream_worker: StreamWorkerFactory, observer: aioredis.Redis
) -> None:
    a, b = await stream_worker(), await stream_worker()
    text = unique("harbour cranes")
    k = FILL_MAX_K + 100  # not filled: Redis holds no result of this k to read
    before = await command_calls(observer)
    first = await a.stream(text, k=k)
    await a.cache.link.flush()
    after = await command_calls(observer)
    assert first.count == k
    assert a.wire.sends == 2  # the generation read (with the embedding), its SET behind
    assert more(before, after, "get", "set") == {"get": 2, "set": 1}
    model = b.model_calls()
    before = await command_calls(observer)
    await b.stream(text, k=k)
    await b.cache.link.flush()
    after = await command_calls(observer)
    assert b.wire.sends == 1  # the generation read, with the embedding (a hit)
    assert more(before, after, "get", "set") == {"get": 2, "set": 0}
    assert b.model_calls() == model


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_identical_streams_share_one_computation_and_one_in_flight_unit(
    stream_worker: StreamWorkerFactory,
) -> None:
    w = await stream_worker()
    text = unique("tidal estuary")
    model, searches = w.model_calls(), w.db_searches()
    results = await asyncio.gather(*[w.stream(text) for _ in range(20)])
    assert len({r.batches for r in results}) == 1
    assert (w.model_calls(), w.db_searches()) == (model + 1, searches + 1)
    assert total(w.metrics.coalesced) == 19
    assert w.bound.peak == 1
    assert w.bound.held == 0
    await w.cache.link.flush()
    assert w.wire.sends == 2  # the shared generation read, one write behind


@pytest.mark.stack
@pytest.mark.timeout(60)
async def test_a_failed_read_bypasses_the_cache_and_the_stream_is_answered(
    stream_worker: StreamWorkerFactory,
) -> None:
    w = await stream_worker(SEARCH_BREAKER_FAILURES="1", SEARCH_BREAKER_COOLDOWN_S="60")
    text = unique("basalt columns")
    w.wire.stall_scripts_s = 1.0  # the generation read times out (50 ms)
    got = await w.stream(text)
    w.wire.stall_scripts_s = 0.0
    assert got.count == 5
    # one failed call: the generation is unknown, so the stream bypassed the cache (and
    # wrote nothing); the breaker opened
    assert total(w.metrics.redis_errors, op="gen") == 1
    assert w.cache.breaker.state == "open"
    assert w.bound.held == 0
    await w.cache.link.flush()
    assert w.wire.sends == 1
