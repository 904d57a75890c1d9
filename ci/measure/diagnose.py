"""Diagnosis during ``perfci run``: CPU profiles, allocation growth, query plans, statements.

* ``--profile-cpu``: py-spy records every service worker while a scenario runs (one SVG
  flame graph and one speedscope JSON per worker, ``--nonblocking`` so the service is never
  paused to be sampled). py-spy writes its file when interrupted, so it is stopped with
  SIGINT when the scenario ends; ``--duration`` only bounds a run that outlives us.
* ``--profile-memory``: tracemalloc is started through the service's admin route at the
  end of warm-up and compared at the end of the run (top allocation sites by growth).
* Always: ``EXPLAIN (ANALYZE, BUFFERS, SETTINGS)`` of the service's own search, through its
  admin route ``GET /v1/admin/explain`` (the service runs exactly the statement and the
  settings it serves with; ci/ copies no SQL), written to ``explain.txt``; and, when the
  database is reachable, the top statements of each scenario by total time.

Every helper here reports failures as text in its result; diagnosis never fails a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from ci.errors import RunError
from ci.results import (
    AllocationSite,
    Diagnostics,
    ProfileLink,
    ScenarioStatements,
    Statement,
)

TOP_STATEMENTS = 10
EXPLAIN_K = 10
PYSPY_STOP_TIMEOUT_S = 30.0

# Our own monitoring statements stay out of the top list.
_SNAPSHOT_SQL = """
SELECT queryid, query, calls, total_exec_time, rows
FROM pg_stat_statements
WHERE query NOT ILIKE '%pg_stat_%' AND query NOT ILIKE 'EXPLAIN%'
"""


# -- CPU: py-spy ------------------------------------------------------------------------------


def find_py_spy() -> Path | None:
    """py-spy beside this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return beside
    found = shutil.which("py-spy")
    return Path(found) if found else None


def service_workers(pid: int) -> list[int]:
    """The processes that serve requests: the children of ``pid``, or ``pid`` alone."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error as exc:
        raise RunError(f"service pid {pid}: cannot list its processes: {exc}") from exc
    workers = [c.pid for c in children if "python" in (_name(c) or "")]
    return workers or [pid]


def _name(proc: psutil.Process) -> str | None:
    with contextlib.suppress(psutil.Error):
        return proc.name()
    return None


@dataclass(frozen=True, slots=True)
class ProfileFile:
    pid: int
    kind: str  # py-spy's --format: "flamegraph" (SVG), "speedscope" (JSON), "raw" (collapsed)
    path: Path


@dataclass
class CpuProfiler:
    """One ``py-spy record`` per worker and format, from ``start()`` to ``stop()``."""

    binary: Path
    pids: list[int]
    out_dir: Path
    scenario: str
    max_duration_s: float
    # py-spy --format and file suffix per recorder: each format is a recorder of its own
    formats: tuple[tuple[str, str], ...] = (
        ("flamegraph", "svg"),
        ("speedscope", "speedscope.json"),
    )
    rate: int = 100  # samples per second
    _procs: list[tuple[subprocess.Popen[bytes], ProfileFile]] = field(default_factory=list)

    def start(self) -> None:
        for pid in self.pids:
            for kind, suffix in self.formats:
                path = self.out_dir / f"{self.scenario}.cpu.{pid}.{suffix}"
                cmd = [
                    str(self.binary), "record", "--pid", str(pid), "--format", kind,
                    "--output", str(path), "--duration", str(int(self.max_duration_s) + 1),
                    "--nonblocking", "--rate", str(self.rate),
                ]  # fmt: skip
                log = (self.out_dir / f"{self.scenario}.cpu.{pid}.{kind}.log").open("wb")
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
                log.close()
                self._procs.append((proc, ProfileFile(pid, kind, path)))

    def stop(self) -> tuple[list[ProfileFile], list[str]]:
        """Interrupt every recorder (it then writes its file); return files and problems."""
        files, problems = [], []
        for proc, _ in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
        for proc, out in self._procs:
            try:
                proc.wait(timeout=PYSPY_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if out.path.exists() and out.path.stat().st_size > 0:
                files.append(out)
            else:
                problems.append(f"py-spy wrote no {out.kind} for pid {out.pid} (see its .log)")
        return files, problems


# -- memory: tracemalloc through the admin routes --------------------------------------------


def _admin_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tracemalloc_start(base_url: str, token: str) -> dict[str, Any]:
    try:
        r = httpx.post(
            f"{base_url}/v1/debug/tracemalloc/start", headers=_admin_headers(token), timeout=30
        )
        r.raise_for_status()
        data = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RunError(f"POST /v1/debug/tracemalloc/start failed: {exc}") from exc
    return data if isinstance(data, dict) else {}


def tracemalloc_top(base_url: str, token: str, limit: int = 25) -> dict[str, Any]:
    try:
        r = httpx.get(
            f"{base_url}/v1/debug/tracemalloc/top",
            params={"compare": "1", "limit": str(limit)},
            headers=_admin_headers(token),
            timeout=60,
        )
        r.raise_for_status()
        data = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RunError(f"GET /v1/debug/tracemalloc/top failed: {exc}") from exc
    return data if isinstance(data, dict) else {}


# -- the database: statements and the query plan ---------------------------------------------


Snapshot = dict[int, tuple[str, int, float, int]]  # queryid -> (query, calls, total ms, rows)


def statement_snapshot(database_url: str) -> Snapshot:
    async def read() -> Snapshot:
        import asyncpg  # the service's driver; imported here so ci/ loads without it

        conn: Any = await asyncpg.connect(database_url, timeout=10)
        try:
            rows = await conn.fetch(_SNAPSHOT_SQL)
        finally:
            await asyncio.wait_for(conn.close(), timeout=5)
        return {
            int(r["queryid"]): (str(r["query"]), int(r["calls"]), float(r["total_exec_time"]),
                                int(r["rows"]))
            for r in rows
            if r["queryid"] is not None
        }  # fmt: skip

    try:
        return asyncio.run(read())
    except Exception as exc:  # any driver or server error: reported, never fatal
        raise RunError(f"pg_stat_statements could not be read: {exc}") from exc


def top_statements(before: Snapshot, after: Snapshot, n: int = TOP_STATEMENTS) -> list[Statement]:
    """Statements by total execution time over the interval between two snapshots."""
    out = []
    for qid, (query, calls, total, rows) in after.items():
        _, calls0, total0, rows0 = before.get(qid, (query, 0, 0.0, 0))
        dc, dt = calls - calls0, total - total0
        if dc <= 0:
            continue
        out.append(Statement(" ".join(query.split()), dc, round(dt, 3), round(dt / dc, 4),
                             rows - rows0))  # fmt: skip
    return sorted(out, key=lambda s: -s.total_ms)[:n]


def explain_search(base_url: str, token: str, query: str, k: int = EXPLAIN_K) -> str:
    """``explain.txt`` from ``GET /v1/admin/explain``: settings lines, the statement, the plan."""
    try:
        r = httpx.get(
            f"{base_url}/v1/admin/explain",
            params={"q": query, "k": str(k)},
            headers=_admin_headers(token),
            timeout=60,
        )
        r.raise_for_status()
        doc = r.json()
        settings: dict[str, Any] = dict(doc["settings"])
        head = [f"-- index mode {doc['index_mode']}, k = {doc['k']}, q = {query!r}"]
        head += [f"SET LOCAL {name} = {value};" for name, value in settings.items()]
        statement = str(doc["statement"]).strip().rstrip(";")
        return "\n".join([*head, f"{statement};", "", str(doc["plan"]).rstrip()])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"GET /v1/admin/explain failed: {exc}") from exc


def admin_token(env: dict[str, str]) -> str | None:
    """The admin token the runner may use: the service env's, else this process's."""
    return env.get("SEARCH_ADMIN_TOKEN") or os.environ.get("SEARCH_ADMIN_TOKEN") or None


# -- one run's diagnosis, driven by ci.measure.run ---------------------------------------------


@dataclass
class Diagnoser:
    """Hooks called by ``ci.run`` around warm-up and each scenario; ``finish()`` sums up."""

    run_dir: Path
    base_url: str
    service_pid: int | None
    database_url: str | None
    service_env: dict[str, str]
    profile_cpu: bool = False
    profile_memory: bool = False
    explain_query: str | None = None  # the text the service embeds for EXPLAIN
    _problems: list[str] = field(default_factory=list)
    _profiles: list[ProfileLink] = field(default_factory=list)
    _statements: list[ScenarioStatements] = field(default_factory=list)
    _before: Snapshot | None = None
    _cpu: CpuProfiler | None = None
    _tracing: bool = False

    def __post_init__(self) -> None:
        if self.profile_cpu:
            if self.service_pid is None:
                raise RunError("--profile-cpu needs the service's pid: run without --target")
            if find_py_spy() is None:
                raise RunError("--profile-cpu needs py-spy: pip install py-spy")
        if self.profile_memory and admin_token(self.service_env) is None:
            raise RunError("--profile-memory needs SEARCH_ADMIN_TOKEN (the admin routes)")

    def after_warm_up(self) -> None:
        token = admin_token(self.service_env)
        if self.profile_memory and token is not None:
            tracemalloc_start(self.base_url, token)
            self._tracing = True

    def scenario_started(self, name: str, planned_s: float | None) -> None:
        if self.database_url is not None:
            try:
                self._before = statement_snapshot(self.database_url)
            except RunError as exc:
                self._before = None
                self._problems.append(f"{name}: {exc}")
        if self.profile_cpu and self.service_pid is not None:
            binary = find_py_spy()
            assert binary is not None, "checked in __post_init__"
            self._cpu = CpuProfiler(
                binary, service_workers(self.service_pid), self.run_dir, name,
                (planned_s or 600.0) + 60.0,
            )  # fmt: skip
            self._cpu.start()

    def scenario_stopped(self, name: str) -> None:
        if self._cpu is not None:
            files, problems = self._cpu.stop()
            self._cpu = None
            self._problems += [f"{name}: {p}" for p in problems]
            for f in files:
                label = f"{name}: CPU {f.kind} of pid {f.pid}"
                self._profiles.append(ProfileLink(label, f.path.name))
        before, self._before = self._before, None
        if self.database_url is not None and before is not None:
            try:
                top = top_statements(before, statement_snapshot(self.database_url))
            except RunError as exc:
                self._problems.append(f"{name}: {exc}")
            else:
                self._statements.append(ScenarioStatements(name, tuple(top)))

    def finish(self) -> Diagnostics:
        sites: tuple[AllocationSite, ...] = ()
        pid = None
        token = admin_token(self.service_env)
        if self._tracing and token is not None:
            try:
                top = tracemalloc_top(self.base_url, token)
            except RunError as exc:
                self._problems.append(str(exc))
            else:
                (self.run_dir / "tracemalloc.json").write_text(json.dumps(top, indent=2))
                self._profiles.append(
                    ProfileLink("tracemalloc: allocation growth (JSON)", "tracemalloc.json")
                )
                sites = _allocation_sites(top.get("sites", ()))
                pid = top.get("pid") if isinstance(top.get("pid"), int) else None
        plan = self._explain(token)
        if self._statements:
            doc = {
                group.scenario: [
                    {"query": s.query, "calls": s.calls, "total_ms": s.total_ms,
                     "mean_ms": s.mean_ms, "rows": s.rows}
                    for s in group.top
                ]
                for group in self._statements
            }  # fmt: skip
            (self.run_dir / "statements.json").write_text(json.dumps(doc, indent=2))
        return Diagnostics(
            profiles=tuple(self._profiles),
            allocation_sites=sites,
            allocation_pid=pid,
            explain=plan,
            statements=tuple(self._statements),
            problems=tuple(self._problems),
        )

    def _explain(self, token: str | None) -> str | None:
        if token is None:
            self._problems.append("no admin token: explain skipped")
            return None
        if self.explain_query is None:
            self._problems.append("no query to explain: explain skipped")
            return None
        try:
            plan = explain_search(self.base_url, token, self.explain_query)
        except RunError as exc:
            self._problems.append(str(exc))
            return None
        (self.run_dir / "explain.txt").write_text(plan + "\n")
        self._profiles.append(
            ProfileLink("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) of the search", "explain.txt")
        )
        return plan


def _allocation_sites(raw: Any) -> tuple[AllocationSite, ...]:
    """The sites of ``/v1/debug/tracemalloc/top`` that carry every field of the model."""
    out = []
    for site in raw if isinstance(raw, list | tuple) else ():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            out.append(
                AllocationSite(
                    file=str(site["file"]),
                    line=int(site["line"]),
                    size_kb=float(site["size_kb"]),
                    size_diff_kb=float(site["size_diff_kb"]),
                    count_diff=int(site["count_diff"]),
                    count=int(site["count"]) if site.get("count") is not None else None,
                )
            )
    return tuple(out)
