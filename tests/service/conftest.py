"""Fixtures for the cache tests: their own PostgreSQL + Valkey and a small corpus.

Named ``cache_*`` so that they never clash with the session fixtures of
``tests/conftest.py``. The cache tests need a database of their own because they count
searches in ``pg_stat_statements`` and write documents, and a Valkey of their own
because one test stops and restarts it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from ci import stack
from ci.seed import seed_corpus
from ci.settings import StackSettings
from tests.harness import server_set, service_starter

CACHE_DOCS = 2000


@dataclass(frozen=True)
class CacheStack:
    run_dir: Path
    database_url: str
    redis_url: str


@dataclass(frozen=True)
class CacheService:
    url: str
    pid: int
    log: str

    def stats(self) -> dict[str, Any]:
        resp = httpx.get(self.url + "/v1/stats", timeout=10)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body


@dataclass(frozen=True)
class CacheValkey:
    settings: StackSettings
    url: str
    pid: int


@pytest.fixture(scope="session")
def cache_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.ServerSet]:
    """PostgreSQL + Valkey of the cache tests' own (the harness's server set)."""
    with server_set(tmp_path_factory.mktemp("cache-stack")) as servers:
        yield servers


@pytest.fixture(scope="session")
def cache_stack(cache_servers: stack.ServerSet) -> CacheStack:
    """The cache tests' servers with a 2000-document corpus (hash embedder)."""
    run_dir = cache_servers.settings.run_dir
    seed_corpus(
        run_dir,
        cache_servers.pg.url,
        docs=CACHE_DOCS,
        seed=1,
        service_env={"SEARCH_EMBEDDER": "hash", "REDIS_URL": cache_servers.valkey.url},
    )
    return CacheStack(run_dir, cache_servers.pg.url, cache_servers.valkey.url)


ValkeyFactory = Callable[[int | None], CacheValkey]


@pytest.fixture
def cache_valkey_factory(cache_stack: CacheStack) -> Iterator[ValkeyFactory]:
    """Start a Valkey of the test's own (optionally on a given port, to restart it)."""
    started: list[int] = []

    def start(port: int | None = None) -> CacheValkey:
        settings = StackSettings(
            run_dir=cache_stack.run_dir / f"valkey-{len(started)}",
            pg_port=stack.free_port(),
            service_port=stack.free_port(),
            redis_port=port or stack.free_port(),
        )
        comp = stack.start_valkey(settings)
        assert comp.pid is not None, "start_valkey returned no pid"
        started.append(comp.pid)
        return CacheValkey(settings, comp.url, comp.pid)

    yield start
    for pid in started:
        with contextlib.suppress(Exception):
            stack.stop_pid(pid, "valkey")


ServiceFactory = Callable[..., CacheService]


@pytest.fixture(scope="session")
def cache_service_factory(
    cache_servers: stack.ServerSet, cache_stack: CacheStack
) -> ServiceFactory:
    """Start a real uvicorn service with given SEARCH_* settings (the harness's starter)."""
    start_service = service_starter(
        cache_servers,
        cache_stack.run_dir / "services",
        SEARCH_EMBEDDER="hash",
        SEARCH_POOL_MIN_SIZE="1",
    )

    def start(workers: int = 1, redis_url: str | None = None, **env: str) -> CacheService:
        svc = start_service(workers=workers, redis_url=redis_url, **env)
        return CacheService(svc.url, svc.pid, svc.log)

    return start


def stop_service(service: CacheService) -> None:
    """Stop a service early (frees its workers for the tests that follow)."""
    stack.stop_pid(service.pid, "service")


# ------------------------------------------------- a Valkey of the test's own, and a client on it


@pytest.fixture
async def valkey(cache_valkey_factory: ValkeyFactory) -> CacheValkey:
    return cache_valkey_factory(None)


@pytest.fixture
async def observer(valkey: CacheValkey) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(valkey.url)
    try:
        yield client
    finally:
        await client.aclose()
