"""One worker's engine on the cache tests' servers, its Redis round trips counted.

Shared by the engine tests (``tests/service/test_search.py``) and the stream tests
(``tests/service/test_stream_search.py``): the engine as ``service.http.app`` builds it
(hash embedder, the settings' pool, cache and batcher), with a :class:`Wire` on its Redis
client (the ``valkey`` and ``observer`` fixtures are in ``tests/service/conftest.py``).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service.cache.search_cache import SearchCache
from service.db.database import Database
from service.embed.factory import embedder_from_settings
from service.metrics import Metrics
from service.search import SearchEngine
from service.settings import Settings
from tests.service.cache.wire import Wire, total


@dataclass(frozen=True)
class EngineParts:
    engine: SearchEngine
    cache: SearchCache
    metrics: Metrics
    wire: Wire
    settings: Settings

    def model_calls(self) -> float:
        return total(self.metrics.embed_calls)

    def db_searches(self) -> float:
        return total(self.metrics.db_searches)


async def start_engine(
    stack: contextlib.AsyncExitStack, database_url: str, redis_url: str, **env: str
) -> EngineParts:
    """Build the engine (closed by ``stack``); no background refresh to count."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SEARCH_EMBEDDER": "hash",
            "SEARCH_POOL_MIN_SIZE": "1",
            "SEARCH_XFETCH_BETA": "0",
            **env,
        }
    )
    metrics = Metrics()
    embedder = embedder_from_settings(settings, on_call=metrics.on_embed)
    stack.push_async_callback(embedder.aclose)
    db = await Database.open(settings, metrics)
    stack.push_async_callback(db.close)
    await db.check_model(embedder.model_id)
    cache = SearchCache.connect(settings, metrics, embedder.model_id)
    stack.push_async_callback(cache.aclose)
    assert cache.redis is not None, "the engine needs a Redis client here"
    wire = Wire()
    wire.attach(cache.redis)
    engine = SearchEngine(db, embedder, cache=cache, metrics=metrics)
    stack.push_async_callback(engine.aclose)
    return EngineParts(engine, cache, metrics, wire, settings)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


async def command_calls(observer: aioredis.Redis) -> dict[str, int]:
    """Valkey's calls per command so far (``INFO commandstats``)."""
    stats: dict[str, Any] = await observer.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


def more(before: dict[str, int], after: dict[str, int], *commands: str) -> dict[str, int]:
    return {c: after.get(c, 0) - before.get(c, 0) for c in commands}
