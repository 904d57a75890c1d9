"""The test suite's stack: a real PostgreSQL + pgvector and Valkey, a seeded corpus, services.

Everything listens on free loopback ports in a temporary run folder and is stopped by its
own PID: the servers at the end of the session, a service at the end of the test (or module)
that started it. The building blocks are ``ci.stack.ServerSet`` (the same one ``perfci
chaos`` uses); this module turns them into pytest fixtures, and ``tests/conftest.py`` makes
those fixtures visible to every test.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    server_set: stack.ServerSet


@dataclass(frozen=True)
class RunningService:
    url: str
    pid: int
    log: str


ServiceFactory = Callable[..., RunningService]


@contextlib.contextmanager
def server_set(run_dir: Path) -> Iterator[stack.ServerSet]:
    """PostgreSQL + Valkey on free loopback ports for the block; everything stopped after."""
    servers = stack.start_server_set(stack.loopback_settings(run_dir))
    try:
        yield servers
    finally:
        servers.close()


def service_starter(
    servers: stack.ServerSet, run_root: Path, **defaults: str
) -> Callable[..., RunningService]:
    """``start(workers=1, database_url=None, redis_url=None, **env)``: a real uvicorn service.

    ``env`` names are upper-cased SEARCH_* settings on top of ``defaults`` (and the hash
    embedder); each service gets a run folder of its own under ``run_root``.
    """
    count = 0

    def start(
        workers: int = 1,
        database_url: str | None = None,
        redis_url: str | None = None,
        **env: str,
    ) -> RunningService:
        nonlocal count
        run_dir = run_root / f"service-{count}"
        count += 1
        comp = servers.start_service(
            run_dir,
            workers=workers,
            service_env={**defaults, **{k.upper(): v for k, v in env.items()}},
            database_url=database_url,
            redis_url=redis_url,
        )
        assert comp.pid is not None, "start_service returned no pid"
        return RunningService(comp.url, comp.pid, comp.log or "")

    return start


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """PostgreSQL 18 + pgvector and Valkey for the whole test session."""
    run_dir = tmp_path_factory.mktemp("stack")
    with server_set(run_dir) as ss:
        yield Servers(ss.settings, ss.pg.url, ss.valkey.url, run_dir, ss)


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


@contextlib.contextmanager
def stopped_after(servers: stack.ServerSet, start: ServiceFactory) -> Iterator[ServiceFactory]:
    """``start``, with every service it starts in the block stopped by PID when it ends.

    Each service holds its pool's connections to the session's PostgreSQL for as long as it
    runs (``SEARCH_POOL_MIN_SIZE``, 20 by default, opened at start): left running to the end
    of the session, the tests' services held over 300 connections, the server's limit.
    """
    started: list[RunningService] = []

    def start_tracked(*args: Any, **kwargs: Any) -> RunningService:
        svc = start(*args, **kwargs)
        started.append(svc)
        return svc

    try:
        yield start_tracked
    finally:
        for svc in started:
            with contextlib.suppress(Exception):
                servers.stop_service(stack.Component("service", svc.pid, svc.url, svc.log))


@pytest.fixture(scope="session")
def session_service_starter(servers: Servers) -> ServiceFactory:
    """Start a real uvicorn service that runs to the end of the session (session fixtures
    only; a test or module uses ``service_factory`` or ``module_service_factory``)."""
    return service_starter(servers.server_set, servers.run_dir)


@pytest.fixture
def service_factory(
    servers: Servers, session_service_starter: ServiceFactory
) -> Iterator[ServiceFactory]:
    """Start a real uvicorn service with given SEARCH_* settings; stopped after the test."""
    with stopped_after(servers.server_set, session_service_starter) as start:
        yield start


@pytest.fixture(scope="module")
def module_service_factory(
    servers: Servers, session_service_starter: ServiceFactory
) -> Iterator[ServiceFactory]:
    """``service_factory`` for module-scoped fixtures: stopped after the module's tests."""
    with stopped_after(servers.server_set, session_service_starter) as start:
        yield start


@pytest.fixture(scope="session")
def search_service(session_service_starter: ServiceFactory, corpus: SeedResult) -> RunningService:
    """One HNSW service over the seeded corpus, shared by the read-mostly API tests."""
    return session_service_starter(SEARCH_INDEX_MODE="hnsw", SEARCH_STREAM_BATCH_SIZE="50")


@dataclass(frozen=True)
class OwnValkey:
    url: str
    pid: int


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[OwnValkey]:
    """A Valkey of one test's own, started and stopped by PID: nothing else talks to it (the
    cache-link tests stop it with SIGSTOP to stall it, and need its PID for that)."""
    settings = StackSettings(
        run_dir=tmp_path / "valkey",
        pg_port=stack.free_port(),
        service_port=stack.free_port(),
        redis_port=stack.free_port(),
    )
    comp = stack.start_valkey(settings)
    assert comp.pid is not None, "start_valkey returned no pid"
    try:
        yield OwnValkey(comp.url, comp.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(comp.pid, signal.SIGCONT)  # stopped, it would not act on SIGTERM
        stack.stop_pid(comp.pid, "valkey")
