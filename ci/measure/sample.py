"""Sampling during a scenario: service processes (psutil) and PostgreSQL (pg_stat_*).

Both samplers run in a background thread, once a second, between ``start()`` and
``stop()``; ``stop()`` returns frozen figures. The database is queried for analysis only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

from ci.results import DatabaseFigures, Resources, ResourceSample

# Statements touching the documents table; our own monitoring queries are left out.
_STATEMENTS_SQL = """
SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(total_exec_time), 0)::float8
FROM pg_stat_statements
WHERE query ILIKE '%documents%' AND query NOT ILIKE '%pg_stat_statements%'
"""
_CONNECTIONS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
"""


class ProcessSampler:
    """RSS, CPU and ESTABLISHED connections on ``port`` of ``pid`` and its children."""

    def __init__(self, pid: int, port: int, interval_s: float = 1.0) -> None:
        assert interval_s > 0, f"interval_s={interval_s} must be positive"
        self._pid = pid
        self._port = port
        self._interval = interval_s
        self._samples: list[ResourceSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perfci-procs", daemon=True)
        self._procs: dict[int, psutil.Process] = {}
        self._t0 = 0.0
        self.peak_connections = 0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> Resources:
        self._stop.set()
        self._thread.join(timeout=10)
        peak = max((s.rss_mb for s in self._samples), default=None)
        return Resources(samples=tuple(self._samples), peak_rss_mb=peak)

    def _tracked(self) -> list[tuple[psutil.Process, str]]:
        try:
            root = psutil.Process(self._pid)
            family = [(root, "master"), *((c, "worker") for c in root.children(recursive=True))]
        except psutil.Error:
            return []
        out = []
        for proc, role in family:
            # keep one Process object per pid so cpu_percent measures since the last sample
            known = self._procs.setdefault(proc.pid, proc)
            out.append((known, role))
        return out

    def _sample_once(self) -> None:
        t = round(time.monotonic() - self._t0, 3)
        total = 0
        for proc, role in self._tracked():
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss / 2**20
                    cpu = proc.cpu_percent(None)
                    conns = sum(
                        1
                        for c in proc.net_connections(kind="tcp")
                        if c.status == psutil.CONN_ESTABLISHED
                        and c.laddr
                        and c.laddr.port == self._port
                    )
            except psutil.Error:
                continue
            total += conns
            self._samples.append(ResourceSample(t, proc.pid, role, round(rss, 2), cpu, conns))
        self.peak_connections = max(self.peak_connections, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample_once()
            self._stop.wait(self._interval)
        self._sample_once()


@dataclass(frozen=True, slots=True)
class _StatementTotals:
    calls: int
    total_exec_ms: float


class DatabaseSampler:
    """pg_stat_statements deltas over the scenario and the peak client-connection count."""

    def __init__(self, database_url: str, interval_s: float = 1.0) -> None:
        self._url = database_url
        self._interval = interval_s
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perfci-db", daemon=True)
        self._before: _StatementTotals | None = None
        self._after: _StatementTotals | None = None
        self._max_connections: int | None = None
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=15)

    def stop(self) -> DatabaseFigures | None:
        """The figures, or None when the database could not be read (``error`` says why)."""
        self._stop.set()
        self._thread.join(timeout=20)
        if self._before is None or self._after is None:
            return None
        calls = max(0, self._after.calls - self._before.calls)
        total = max(0.0, self._after.total_exec_ms - self._before.total_exec_ms)
        return DatabaseFigures(
            calls=calls,
            total_exec_ms=round(total, 3),
            mean_exec_ms=round(total / calls, 4) if calls else None,
            max_connections=self._max_connections,
        )

    def _run(self) -> None:
        try:
            asyncio.run(self._poll())
        except Exception as exc:  # reported through .error; a sampler never fails a run
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    async def _poll(self) -> None:
        import asyncpg  # the service's driver; imported here so ci/ loads without it

        conn: Any = await asyncpg.connect(self._url, timeout=10)
        try:
            self._before = await self._totals(conn)
            self._ready.set()
            while not self._stop.is_set():
                count = int(await conn.fetchval(_CONNECTIONS_SQL))
                self._max_connections = max(self._max_connections or 0, count)
                await asyncio.sleep(self._interval)
            self._after = await self._totals(conn)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=5)

    @staticmethod
    async def _totals(conn: Any) -> _StatementTotals:
        row = await conn.fetchrow(_STATEMENTS_SQL)
        return _StatementTotals(int(row[0]), float(row[1]))
