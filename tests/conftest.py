"""Shared fixtures: a real PostgreSQL + pgvector and Valkey, a seeded corpus, real services.

Everything listens on free loopback ports in a temporary run folder, and is stopped by
its own PID at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci import stack
from ci.seed import SeedResult, seed_corpus
from ci.settings import StackSettings

CORPUS_DOCS = 20_000
CORPUS_SEED = 7
# pgvector's guidance for IVFFlat: lists = rows / 1000 up to 1M rows
IVFFLAT_LISTS = CORPUS_DOCS // 1000


@dataclass(frozen=True)
class Servers:
    settings: StackSettings
    database_url: str
    redis_url: str
    run_dir: Path


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """PostgreSQL 18 + pgvector and Valkey for the whole test session."""
    run_dir = tmp_path_factory.mktemp("stack")
    settings = stack.loopback_settings(run_dir)
    with stack.running_servers(settings) as (pg, valkey):
        yield Servers(settings, pg.url, valkey.url, run_dir)


@pytest.fixture(scope="session")
def corpus(servers: Servers) -> SeedResult:
    """A clustered 20k-document corpus (hash embedder) with HNSW and IVFFlat indexes."""
    result = seed_corpus(
        servers.run_dir,
        servers.database_url,
        CORPUS_DOCS,
        CORPUS_SEED,
        {"SEARCH_EMBEDDER": "hash", "SEARCH_INDEX_MODE": "hnsw"},
    )
    seed_corpus(
        servers.run_dir,
        servers.database_url,
        CORPUS_DOCS,
        CORPUS_SEED,
        {
            "SEARCH_EMBEDDER": "hash",
            "SEARCH_INDEX_MODE": "ivfflat",
            "SEARCH_IVFFLAT_LISTS": str(IVFFLAT_LISTS),
        },
    )
    return result


@dataclass(frozen=True)
class RunningService:
    url: str
    pid: int
    log: str


ServiceFactory = Callable[..., RunningService]


@pytest.fixture(scope="session")
def service_factory(servers: Servers) -> Iterator[ServiceFactory]:
    """Start a real uvicorn service with given SEARCH_* settings; all stopped at the end."""
    started: list[int] = []

    def start(workers: int = 1, database_url: str | None = None, **env: str) -> RunningService:
        service_env = {"SEARCH_EMBEDDER": "hash", **{k.upper(): v for k, v in env.items()}}
        run_dir = servers.run_dir / f"service-{len(started)}"
        run_dir.mkdir()
        settings = stack.loopback_settings(run_dir, workers=workers, service_env=service_env)
        comp = stack.start_service(
            settings, database_url or servers.database_url, servers.redis_url
        )
        assert comp.pid is not None, "start_service returned no pid"
        started.append(comp.pid)
        return RunningService(comp.url, comp.pid, comp.log or "")

    yield start
    for pid in started:
        with contextlib.suppress(Exception):
            stack.stop_pid(pid, "service")


@pytest.fixture(scope="session")
def search_service(service_factory: ServiceFactory, corpus: SeedResult) -> RunningService:
    """One HNSW service over the seeded corpus, shared by the read-mostly API tests."""
    return service_factory(SEARCH_INDEX_MODE="hnsw", SEARCH_STREAM_BATCH_SIZE="50")


def pytest_configure(config: pytest.Config) -> None:
    # PostgreSQL refuses to start as root; the stack handles it, but say where logs go.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
