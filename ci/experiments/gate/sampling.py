"""What a gate window reads from the processes that serve each side, with psutil.

- a service's CPU and resident memory: its process and every descendant alive now (the
  workers of a multi-worker server), summed;
- the PostgreSQL backends connected to a side's own database (``pg_stat_activity``), whose
  CPU is read before and after a window: a pool's backends persist, and one born during
  the window counts from its birth;
- the peak RSS through a window, sampled on a thread every ``RSS_SAMPLE_S``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence

import psutil

from ci.errors import RunError
from ci.results.duet import Side

RSS_SAMPLE_S = 0.5  # the service's RSS is sampled this often during a window


def _family(pid: int) -> list[psutil.Process]:
    """``pid`` and its descendants (those alive now); an error if ``pid`` itself is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error as exc:
        raise RunError(f"service process {pid} is gone: {exc}") from exc


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (those alive now)."""
    total = 0.0
    for proc in _family(pid):
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # a helper that exited between listing and reading
        total += t.user + t.system
    return total


def process_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (those alive now), MB, summed."""
    total = 0
    for proc in _family(pid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def cpu_of(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` alone; None once it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system


def backend_pids(admin_url: str, databases: Sequence[str]) -> dict[str, list[int]]:
    """The PostgreSQL backends connected to each of ``databases`` (``pg_stat_activity``)."""

    async def query() -> list[tuple[int, str]]:
        import asyncpg  # the stack's PostgreSQL client (the service's too)

        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY($1::text[])",
                list(databases),
            )
        finally:
            await conn.close()
        return [(int(r["pid"]), str(r["datname"])) for r in rows]

    try:
        rows = asyncio.run(query())
    except Exception as exc:  # OSError, TimeoutError, asyncpg's own (PostgresError, ...)
        raise RunError(f"cannot list PostgreSQL backends at {admin_url}: {exc}") from exc
    out: dict[str, list[int]] = {db: [] for db in databases}
    for pid, db in rows:
        out[db].append(pid)
    return out


def backend_cpu(admin_url: str, databases: Sequence[str]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of every backend connected to each database, by PID."""
    out: dict[str, dict[int, float]] = {}
    for db, pids in backend_pids(admin_url, databases).items():
        cpu = {pid: cpu_of(pid) for pid in pids}
        out[db] = {pid: c for pid, c in cpu.items() if c is not None}
    return out


def backend_cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU the backends used between two readings: a backend born in between counts from
    its birth (0 before); one gone by the second reading is not seen."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


class RssSampler:
    """Samples each service's RSS every ``RSS_SAMPLE_S`` on a thread until stopped; with
    ``mark_after_s``, the first sample at least that long after the start is kept apart
    (``marked``: the RSS as a window's arrivals end, before its bursts)."""

    def __init__(self, pids: Mapping[Side, int], mark_after_s: float | None = None) -> None:
        self._pids = dict(pids)
        self._mark_after_s = mark_after_s
        self.peak: dict[Side, float] = {s: process_rss_mb(pid) for s, pid in self._pids.items()}
        self.marked: dict[Side, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(RSS_SAMPLE_S):
            mark = self._mark_after_s is not None and time.monotonic() - t0 >= self._mark_after_s
            for side, pid in self._pids.items():
                try:
                    rss = process_rss_mb(pid)
                except RunError:
                    continue  # the window's end reports a gone service
                self.peak[side] = max(self.peak[side], rss)
                if mark and side not in self.marked:
                    self.marked[side] = rss

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
