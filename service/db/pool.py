"""The asyncpg pool: opened with the search settings as connection defaults, bounded waits.

A saturated pool or a server that is down becomes :class:`Unavailable` (503 with
Retry-After), never a hanging request; a query over its time budget likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
from pgvector.asyncpg import register_vector

from service.db.contract import session_settings
from service.errors import Unavailable
from service.metrics import Metrics
from service.settings import Settings


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing beyond asyncpg's own rollback of an open transaction.

    The service changes session state only with SET LOCAL inside transactions, so the
    default ``RESET ALL``/``CLOSE ALL``/``UNLISTEN *`` round trip on every release would
    reset nothing (and ``RESET ALL`` keeps the server_settings, which are startup values).
    """
    del conn


async def _init_connection(conn: asyncpg.Connection) -> None:
    try:
        await register_vector(conn)
    except ValueError:
        # A fresh database: the extension comes before the codec that needs its type.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await register_vector(conn)


_DB_DOWN = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    # seen when PostgreSQL restarts under load: a connection the restart broke mid-protocol
    asyncpg.exceptions.InternalClientError,
)


class ConnectionPool:
    """The service's connections to PostgreSQL. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: Metrics) -> None:
        self._pool = pool
        self._acquire_timeout_s = settings.pool_acquire_timeout_s
        self._metrics = metrics

    @classmethod
    async def open(cls, settings: Settings, metrics: Metrics) -> ConnectionPool:
        try:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.pool_opened_at_start,
                max_size=settings.pool_max_size,
                init=_init_connection,
                setup=None,
                reset=_keep_session,
                command_timeout=max(1.0, settings.statement_timeout_ms / 1000 + 1),
                server_settings={
                    "statement_timeout": str(settings.statement_timeout_ms),
                    "application_name": "search-service",
                    "jit": "off",
                    **session_settings(settings),
                },
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        metrics.pool_size.set(pool.get_size())
        return cls(pool, settings, metrics)

    def is_closing(self) -> bool:
        return bool(self._pool.is_closing())

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  # bounded close, asyncpg style
        self._metrics.pool_size.set(0)
        try:
            await asyncio.wait_for(self._pool.close(), timeout)
        except TimeoutError:
            self._pool.terminate()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; a saturated pool or a down server raises Unavailable (503)."""
        start = time.perf_counter()
        before = self._pool.get_size()
        try:
            conn = await self._pool.acquire(timeout=self._acquire_timeout_s)
        except TimeoutError as exc:
            self._metrics.pool_acquire_timeouts.inc()
            raise Unavailable("database pool exhausted", retry_after_s=1) from exc
        except _DB_DOWN as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        finally:
            self._metrics.pool_acquire_wait.observe(time.perf_counter() - start)
            now = self._pool.get_size()
            if now != before:
                # set, not inc: concurrent acquirers all see one connection's growth, and
                # asyncpg closes idle connections without telling (the gauge read 358 once)
                self._metrics.pool_size.set(now)
        self._metrics.pool_in_use.inc()
        try:
            yield conn
        except asyncpg.exceptions.QueryCanceledError as exc:
            raise Unavailable("database query exceeded its time budget", 1) from exc
        except _DB_DOWN as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        finally:
            self._metrics.pool_in_use.dec()
            with contextlib.suppress(Exception):
                await self._pool.release(conn, timeout=5.0)
