"""The lifespan unwinds whatever it started when start-up fails halfway (AsyncExitStack):
the GC monitor is uninstalled, its flusher task cancelled, the pool closed."""

from __future__ import annotations

import asyncio
import gc

import pytest

from ci import stack
from ci.seed import SeedResult
from service.db.database import Database
from service.errors import ConfigError, Unavailable
from service.http.app import create_app
from service.settings import Settings
from tests.harness import Servers

pytestmark = pytest.mark.timeout(60)


def _leftover_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def _start(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass


async def test_a_bad_setting_found_after_the_gc_monitor_started_unwinds_it() -> None:
    # validate() only asks for a URL; the http embedder refuses its scheme when built,
    # which the lifespan does after installing the GC monitor
    settings = Settings(embedder="http", embed_http_url="ftp://embedder.invalid/v1")
    callbacks = list(gc.callbacks)
    with pytest.raises(ConfigError, match="SEARCH_EMBED_HTTP_URL='ftp://"):
        await _start(settings)
    assert gc.callbacks == callbacks
    assert _leftover_tasks() == set()


async def test_an_unreachable_database_unwinds_the_gc_monitor_and_its_flusher() -> None:
    port = stack.free_port()
    settings = Settings(embedder="hash", database_url=f"postgresql://postgres@127.0.0.1:{port}/x")
    callbacks = list(gc.callbacks)
    with pytest.raises(Unavailable, match="cannot connect to PostgreSQL"):
        await _start(settings)
    assert gc.callbacks == callbacks
    assert _leftover_tasks() == set()
    assert gc.get_freeze_count() == 0  # start-up never got as far as gc.freeze()


@pytest.mark.stack
async def test_a_failure_after_the_pool_opened_closes_the_pool(
    servers: Servers, corpus: SeedResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Database] = []
    real_open = Database.open

    async def open_and_keep(settings: Settings, metrics: object) -> Database:
        db = await real_open(settings, metrics)  # type: ignore[arg-type]  # passed through
        opened.append(db)
        return db

    async def failing_schema(self: Database, *, create_index: bool) -> None:
        raise Unavailable("schema step failed (test)")

    monkeypatch.setattr(Database, "open", staticmethod(open_and_keep))
    monkeypatch.setattr(Database, "ensure_schema", failing_schema)
    settings = Settings(embedder="hash", database_url=servers.database_url, pool_min_size=1)
    callbacks = list(gc.callbacks)
    with pytest.raises(Unavailable, match="schema step failed"):
        await _start(settings)
    assert len(opened) == 1
    assert opened[0].pool.is_closing()
    assert gc.callbacks == callbacks
    assert _leftover_tasks() == set()


@pytest.mark.stack
async def test_a_full_start_and_stop_leaves_nothing_behind(
    servers: Servers, corpus: SeedResult
) -> None:
    settings = Settings(
        embedder="hash", database_url=servers.database_url, pool_min_size=1, gc_freeze=False
    )
    callbacks = list(gc.callbacks)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert len(gc.callbacks) == len(callbacks) + 1  # the GC monitor
        assert {t.get_name() for t in _leftover_tasks()} >= {"gc-pauses"}
        assert await app.state.engine.db.readiness() == (
            True,
            "index documents_hnsw_vector_m16_efc64 present",
        )
    assert gc.callbacks == callbacks
    assert _leftover_tasks() == set()
    assert app.state.engine.db.pool.is_closing()
