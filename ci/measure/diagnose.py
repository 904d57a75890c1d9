"""Diagnosis during ``perfci run``: CPU profiles, allocation growth, query plans, statements.

* ``--profile-cpu``: py-spy records every service worker while a scenario runs (one SVG
  flame graph and one speedscope JSON per worker, ``--nonblocking`` so the service is never
  paused to be sampled). py-spy writes its file when interrupted, so it is stopped with
  SIGINT when the scenario ends; ``--duration`` only bounds a run that outlives us.
* ``--profile-memory``: tracemalloc is started through the service's admin route at the
  end of warm-up and compared at the end of the run (top allocation sites by growth).
* Always, when the database is reachable: ``EXPLAIN (ANALYZE, BUFFERS)`` of the service's
  own search statement (its text taken from pg_stat_statements, so it is the query the
  service really sends) and the top statements of each scenario by total time.

Every helper here reports failures as text in its result; diagnosis never fails a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
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

TOP_STATEMENTS = 10
EXPLAIN_K = 10
PYSPY_STOP_TIMEOUT_S = 30.0

# Our own monitoring statements stay out of the top list.
_SNAPSHOT_SQL = """
SELECT queryid, query, calls, total_exec_time, rows
FROM pg_stat_statements
WHERE query NOT ILIKE '%pg_stat_%' AND query NOT ILIKE 'EXPLAIN%'
"""
# The search statement without a topic filter: ORDER BY distance LIMIT $2.
_SEARCH_SQL = """
SELECT query FROM pg_stat_statements
WHERE query ILIKE 'SELECT id, title, topic,%FROM documents%ORDER BY%LIMIT $2'
  AND query NOT ILIKE '%WHERE topic%'
ORDER BY calls DESC LIMIT 1
"""
# pg_stat_statements turns the service's literals into parameters too: the only one in the
# search statement is the 1 of the cosine score ``1 - (embedding <=> $1)``.
_SCORE_CONSTANT = re.compile(r"\$([3-9]) - \(")
_EXTRA_PARAM = re.compile(r"\$([3-9])\b")


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
    kind: str  # "flamegraph" (SVG) or "speedscope" (JSON)
    path: Path


@dataclass
class CpuProfiler:
    """One ``py-spy record`` per worker and format, from ``start()`` to ``stop()``."""

    binary: Path
    pids: list[int]
    out_dir: Path
    scenario: str
    max_duration_s: float
    _procs: list[tuple[subprocess.Popen[bytes], ProfileFile]] = field(default_factory=list)

    def start(self) -> None:
        for pid in self.pids:
            for kind, suffix in (("flamegraph", "svg"), ("speedscope", "speedscope.json")):
                path = self.out_dir / f"{self.scenario}.cpu.{pid}.{suffix}"
                cmd = [
                    str(self.binary), "record", "--pid", str(pid), "--format", kind,
                    "--output", str(path), "--duration", str(int(self.max_duration_s) + 1),
                    "--nonblocking", "--rate", "100",
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


@dataclass(frozen=True, slots=True)
class Statement:
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


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


def local_settings(index_mode: str, env: dict[str, str], k: int) -> list[str]:
    """The SET LOCAL lines the service uses for ``index_mode`` (service/db.py, no topic)."""
    if index_mode == "hnsw":
        ef = max(int(env.get("SEARCH_HNSW_EF_SEARCH", "40")), k)
        return [f"SET LOCAL hnsw.ef_search = {ef}"]
    if index_mode == "ivfflat":
        return [f"SET LOCAL ivfflat.probes = {int(env.get('SEARCH_IVFFLAT_PROBES', '10'))}"]
    return ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"]


def explain_search(database_url: str, index_mode: str, env: dict[str, str]) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the service's search statement, as text."""

    async def run() -> str:
        import asyncpg
        from pgvector.asyncpg import register_vector

        conn: Any = await asyncpg.connect(database_url, timeout=10)
        try:
            await register_vector(conn)
            query = await conn.fetchval(_SEARCH_SQL)
            if query is None:
                raise RunError("no search statement in pg_stat_statements yet")
            query = _SCORE_CONSTANT.sub("1 - (", str(query))
            if _EXTRA_PARAM.search(query):
                raise RunError(f"unexpected parameters in the search statement: {query}")
            vector = await conn.fetchval("SELECT embedding FROM documents ORDER BY id LIMIT 1")
            if vector is None:
                raise RunError("the documents table is empty")
            settings = local_settings(index_mode, env, EXPLAIN_K)
            async with conn.transaction():
                for stmt in settings:
                    await conn.execute(stmt)
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}", vector, EXPLAIN_K)
        finally:
            await asyncio.wait_for(conn.close(), timeout=5)
        plan = "\n".join(str(r[0]) for r in rows)
        head = [f"-- index mode {index_mode}, k = {EXPLAIN_K}", *(s + ";" for s in settings)]
        return "\n".join([*head, f"EXPLAIN (ANALYZE, BUFFERS) {query};", "", plan])

    try:
        return asyncio.run(run())
    except RunError:
        raise
    except Exception as exc:
        raise RunError(f"EXPLAIN of the search statement failed: {exc}") from exc


def admin_token(env: dict[str, str]) -> str | None:
    """The admin token the runner may use: the service env's, else this process's."""
    return env.get("SEARCH_ADMIN_TOKEN") or os.environ.get("SEARCH_ADMIN_TOKEN") or None


# -- one run's diagnosis, driven by ci.run -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunDiagnostics:
    """What the run report shows beside the results (files are relative to the run dir)."""

    profiles: tuple[tuple[str, str], ...] = ()  # (label, relative path)
    allocation_sites: tuple[dict[str, Any], ...] = ()
    allocation_pid: int | None = None
    explain: str | None = None
    statements: tuple[tuple[str, tuple[Statement, ...]], ...] = ()  # (scenario, top)
    problems: tuple[str, ...] = ()


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
    _problems: list[str] = field(default_factory=list)
    _profiles: list[tuple[str, str]] = field(default_factory=list)
    _statements: list[tuple[str, tuple[Statement, ...]]] = field(default_factory=list)
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
                self._profiles.append((label, f.path.name))
        before, self._before = self._before, None
        if self.database_url is not None and before is not None:
            try:
                top = top_statements(before, statement_snapshot(self.database_url))
            except RunError as exc:
                self._problems.append(f"{name}: {exc}")
            else:
                self._statements.append((name, tuple(top)))

    def finish(self, index_mode: str) -> RunDiagnostics:
        sites: tuple[dict[str, Any], ...] = ()
        pid = None
        token = admin_token(self.service_env)
        if self._tracing and token is not None:
            try:
                top = tracemalloc_top(self.base_url, token)
            except RunError as exc:
                self._problems.append(str(exc))
            else:
                import json

                (self.run_dir / "tracemalloc.json").write_text(json.dumps(top, indent=2))
                self._profiles.append(("tracemalloc: allocation growth (JSON)", "tracemalloc.json"))
                sites = tuple(s for s in top.get("sites", ()) if isinstance(s, dict))
                pid = top.get("pid") if isinstance(top.get("pid"), int) else None
        plan = None
        if self.database_url is not None:
            try:
                plan = explain_search(self.database_url, index_mode, self.service_env)
            except RunError as exc:
                self._problems.append(str(exc))
            else:
                (self.run_dir / "explain.txt").write_text(plan + "\n")
                self._profiles.append(("EXPLAIN (ANALYZE, BUFFERS) of the search", "explain.txt"))
        if self._statements:
            import json

            doc = {
                name: [
                    {"query": s.query, "calls": s.calls, "total_ms": s.total_ms,
                     "mean_ms": s.mean_ms, "rows": s.rows}
                    for s in top
                ]
                for name, top in self._statements
            }  # fmt: skip
            (self.run_dir / "statements.json").write_text(json.dumps(doc, indent=2))
        return RunDiagnostics(
            profiles=tuple(self._profiles),
            allocation_sites=sites,
            allocation_pid=pid,
            explain=plan,
            statements=tuple(self._statements),
            problems=tuple(self._problems),
        )
