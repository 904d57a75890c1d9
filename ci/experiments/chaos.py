"""``perfci chaos``: faults injected into a stack of its own while a steady load runs.

Each experiment starts from a healthy service, drives a constant arrival rate at it (k6's
constant-arrival-rate executor, or an in-process httpx loop that also sees headers), injects
one fault at a fixed time, and judges what the clients saw:

==========  ====================================  =========================================
experiment  fault                                 expectation
==========  ====================================  =========================================
valkey      SIGKILL Valkey, restart on its port   0 failed requests; hit ratio recovers
postgres    ``pg_ctl stop -m fast``, then start   failures only while down, each a 503 with
                                                  Retry-After; all 200 again within 5 s of
                                                  the restart; backends <= pool max
worker      SIGKILL one of 2 uvicorn workers      the worker is replaced; failures bounded
slowdb      every query sleeps 3 s, budget 1 s    every answer a 503/504 within the budget;
                                                  RSS does not grow with the offered load
==========  ====================================  =========================================

k6 reports each request's status but not its headers, and stamps samples in whole
seconds: with ``--driver k6`` the Retry-After half of the PostgreSQL check is not seen
(the httpx driver, which the tests use, checks it) and outage windows get 1 s of slack.

Figures land in ``<out>/chaos.json`` and ``<out>/chaos.md`` (the table: ci.render.chaos); any
unmet expectation makes the command exit 1. The load is ``chaos_load``; the stack is
``ci.stack.ServerSet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil

from ci import stack
from ci.errors import RunError
from ci.experiments.chaos_load import DRIVERS, QUERIES, Driver, Load, Sample, steady_load
from ci.render.chaos import chaos_table
from ci.seed import seed_corpus

EXPERIMENTS = ("valkey", "postgres", "worker", "slowdb")
CHAOS_DOCS = 2000
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one experiment measured and whether its expectation held."""

    name: str
    requests: int
    failures: int
    statuses: dict[str, int]
    figures: dict[str, float | int | str | None]
    checks: dict[str, bool]
    notes: str = ""

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    out_dir: Path
    experiments: tuple[str, ...] = EXPERIMENTS
    rate: float = 40.0  # requests per second offered
    duration_s: float = 10.0  # load per experiment
    fault_at_s: float = 3.0  # fault injected this long into the load
    down_s: float = 2.0  # how long Valkey / PostgreSQL stay down
    driver: str = "k6"  # k6 | httpx
    unique_fraction: float = 0.5  # queries no cache can answer, so the database is exercised


def _service(cs: stack.ServerSet, name: str, workers: int = 1, **env: str) -> stack.Component:
    """A service of the experiment's own (hash embedder) over the seeded corpus."""
    return cs.start_service(
        cs.settings.run_dir / f"service-{name}", workers=workers, service_env=env
    )


@contextlib.contextmanager
def _load(driver: Driver, url: str, cfg: ChaosConfig, out: Path) -> Iterator[list[Sample]]:
    load = Load(url, cfg.rate, cfg.duration_s, cfg.unique_fraction, out)
    with steady_load(driver, load) as samples:
        yield samples


@contextlib.contextmanager
def chaos_stack(run_dir: Path, progress: Progress) -> Iterator[stack.ServerSet]:
    """PostgreSQL + Valkey with a seeded corpus; services are started per experiment."""
    settings = stack.loopback_settings(run_dir)
    progress(f"starting PostgreSQL :{settings.pg_port} and Valkey :{settings.redis_port}")
    cs = stack.start_server_set(settings)
    try:
        progress(f"seeding {CHAOS_DOCS} documents")
        seed_corpus(run_dir, cs.pg.url, CHAOS_DOCS, 1, {"SEARCH_EMBEDDER": "hash"})
        yield cs
    finally:
        cs.close(remove_data=True)


def _stats(url: str) -> dict[str, Any]:
    resp = httpx.get(url + "/v1/stats", timeout=10)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _hits(stats: dict[str, Any]) -> tuple[float, float]:
    sources = stats["cache"]["sources"]
    return sources["l1"] + sources["redis"], sum(sources.values())


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    (h0, n0), (h1, n1) = _hits(a), _hits(b)
    return (h1 - h0) / (n1 - n0) if n1 > n0 else 0.0


def _summary(samples: Sequence[Sample]) -> tuple[int, int, dict[str, int]]:
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    failures = sum(1 for s in samples if s.status != 200)
    return len(samples), failures, dict(sorted(statuses.items()))


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def _backends(database_url: str) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'search-service'"
            )
            return int(n)
        finally:
            await conn.close()

    return asyncio.run(count())


# ---------------------------------------------------------------------------- experiments


def exp_valkey(
    cs: stack.ServerSet, cfg: ChaosConfig, driver: Driver, progress: Progress
) -> Outcome:
    svc = _service(cs, "valkey")
    # the cache refills after the restart (a new generation): give the ratio time to return
    cfg = replace(cfg, duration_s=cfg.duration_s + 6)
    try:
        _warm(svc.url)
        t0 = time.time()
        with _load(driver, svc.url, cfg, cfg.out_dir / "valkey") as samples:
            _sleep_until(t0 + cfg.fault_at_s - 1)
            s_before = _stats(svc.url)
            _sleep_until(t0 + cfg.fault_at_s)
            s_kill = _stats(svc.url)
            progress(f"valkey: SIGKILL pid {cs.valkey.pid}")
            t_kill = time.time()
            assert cs.valkey.pid is not None, "valkey has no pid"
            os.kill(cs.valkey.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                stack.stop_pid(cs.valkey.pid, "valkey", timeout=2)  # reap it
            _sleep_until(t_kill + cfg.down_s)
            cs.restart_valkey()
            t_up = time.time()
            progress(f"valkey: restarted as pid {cs.valkey.pid} on the same port")
            # hit ratio over 1 s windows until the load ends: when is it back?
            windows: list[tuple[float, float]] = []
            prev = _stats(svc.url)
            while time.time() < t0 + cfg.duration_s - 0.5:
                time.sleep(1.0)
                cur = _stats(svc.url)
                windows.append((time.time() - t_up, _ratio(prev, cur)))
                prev = cur
        s_end = _stats(svc.url)
        n, failures, statuses = _summary(samples)
        before = _ratio(s_before, s_kill)
        recover_s = next((t for t, r in windows if r >= 0.8 * before), None)
        after = windows[-1][1] if windows else 0.0
        return Outcome(
            "valkey",
            n,
            failures,
            statuses,
            {
                "down_s": round(t_up - t_kill, 2),
                "hit_ratio_before": round(before, 3),
                "hit_ratio_last_1s": round(after, 3),
                "hit_ratio_recovered_after_s": round(recover_s, 2) if recover_s else None,
                "hit_ratio_per_s_after": " ".join(f"{r:.2f}" for _, r in windows),
                "redis_errors": s_end["cache"]["redis_errors"],
                "breaker_state_end": s_end["cache"]["breaker_state"],
            },
            {
                "no failed requests": failures == 0,
                "hit ratio back to 80 % of before": recover_s is not None,
            },
        )
    finally:
        cs.stop_service(svc)


def exp_postgres(
    cs: stack.ServerSet, cfg: ChaosConfig, driver: Driver, progress: Progress
) -> Outcome:
    pool_max = 10
    svc = _service(
        cs, "postgres", SEARCH_POOL_MAX_SIZE=str(pool_max), SEARCH_POOL_ACQUIRE_TIMEOUT_S="1"
    )
    try:
        _warm(svc.url)
        t0 = time.time()
        with _load(driver, svc.url, cfg, cfg.out_dir / "postgres") as samples:
            _sleep_until(t0 + cfg.fault_at_s)
            progress("postgres: pg_ctl stop -m fast")
            t_down = time.time()
            stack.stop_postgres(cs.pg, cs.pg_data)
            _sleep_until(t_down + cfg.down_s)
            cs.restart_postgres()
            t_up = time.time()
            progress(f"postgres: started again (pid {cs.pg.pid})")
        backends = _backends(cs.pg.url)
        n, failures, statuses = _summary(samples)
        failed = [s for s in samples if s.status != 200]
        # a request sent before the stop may fail on its connection when the stop lands
        last_fail = max((s.t + s.latency_s for s in failed), default=t_up)
        recover_s = max(0.0, last_fail - t_up)
        slack = 1.0 if cfg.driver == "k6" else 0.0  # k6 timestamps are whole seconds
        outside = [
            s for s in failed if s.t + s.latency_s < t_down - slack or s.t > t_up + 5 + slack
        ]
        not_503 = [s for s in failed if s.status != 503 or s.retry_after is False]
        return Outcome(
            "postgres",
            n,
            failures,
            statuses,
            {
                "down_s": round(t_up - t_down, 2),
                "recover_s": round(recover_s, 2),
                "failures_outside_outage": len(outside),
                "failures_not_503_retry_after": len(not_503),
                "backends_after": backends,
                "pool_max": pool_max,
            },
            {
                "failures only while down (+5 s)": not outside,
                "every failure a 503 with Retry-After": not not_503,
                "recovers within 5 s": recover_s <= 5.0,
                "no leaked connections": backends <= pool_max,
                "same service process (no restart)": stack.pid_alive(svc.pid),
            },
        )
    finally:
        cs.stop_service(svc)


def exp_worker(
    cs: stack.ServerSet, cfg: ChaosConfig, driver: Driver, progress: Progress
) -> Outcome:
    svc = _service(cs, "worker", workers=2)
    try:
        _warm(svc.url)
        parent = psutil.Process(svc.pid)
        before = sorted(c.pid for c in parent.children() if _is_worker(c))
        if len(before) != 2:
            raise RunError(f"expected 2 uvicorn workers under pid {svc.pid}, found {before}")
        t0 = time.time()
        replaced_s: float | None = None
        with _load(driver, svc.url, cfg, cfg.out_dir / "worker") as samples:
            _sleep_until(t0 + cfg.fault_at_s)
            victim = before[0]
            progress(f"worker: SIGKILL worker pid {victim}")
            t_kill = time.time()
            os.kill(victim, signal.SIGKILL)
            while time.time() < t_kill + 15:
                now = [c.pid for c in parent.children() if _is_worker(c)]
                if len(now) == 2 and victim not in now and stack.http_ok(svc.url + "/healthz"):
                    replaced_s = time.time() - t_kill
                    break
                time.sleep(0.05)
        n, failures, statuses = _summary(samples)
        budget = max(5, int(0.05 * n))
        return Outcome(
            "worker",
            n,
            failures,
            statuses,
            {"replaced_s": round(replaced_s, 2) if replaced_s is not None else None,
             "failure_budget": budget},
            {"worker replaced": replaced_s is not None, "failures bounded": failures <= budget},
            notes="requests in flight on the killed worker fail at the transport level (0)",
        )  # fmt: skip
    finally:
        cs.stop_service(svc)


def _is_worker(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        # uvicorn's workers are multiprocessing spawns; its resource tracker is not one
        return "resource_tracker" not in " ".join(proc.cmdline())
    return False


def exp_slowdb(
    cs: stack.ServerSet, cfg: ChaosConfig, driver: Driver, progress: Progress
) -> Outcome:
    acquire_s, statement_ms = 0.5, 1000
    budget_s = acquire_s + statement_ms / 1000 + 1.0  # plus a second for the machine
    svc = _service(
        cs,
        "slowdb",
        SEARCH_DEBUG_DB_DELAY_MS="3000",
        SEARCH_STATEMENT_TIMEOUT_MS=str(statement_ms),
        SEARCH_POOL_ACQUIRE_TIMEOUT_S=str(acquire_s),
        SEARCH_CACHE_ENABLED="0",
        SEARCH_COALESCE_ENABLED="0",
    )
    try:
        assert svc.pid is not None, "service has no pid"
        proc = psutil.Process(svc.pid)
        rss0 = proc.memory_info().rss
        peak = rss0
        progress("slowdb: every query sleeps 3 s against a 1 s statement timeout")
        with _load(driver, svc.url, cfg, cfg.out_dir / "slowdb") as samples:
            end = time.time() + cfg.duration_s
            while time.time() < end:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.2)
        n, failures, statuses = _summary(samples)
        wrong = [s for s in samples if s.status not in (503, 504)]
        slow = [s for s in samples if s.latency_s > budget_s]
        grown_mb = (peak - rss0) / 2**20
        lat = sorted(s.latency_s for s in samples) or [0.0]
        return Outcome(
            "slowdb",
            n,
            failures,
            statuses,
            {
                "latency_p50_s": round(lat[len(lat) // 2], 3),
                "latency_max_s": round(lat[-1], 3),
                "budget_s": budget_s,
                "rss_growth_mb": round(grown_mb, 1),
                "not_503_504": len(wrong),
            },
            {
                "every answer a 503/504": not wrong,
                "within the time budget": not slow,
                "RSS bounded (< 50 MB growth)": grown_mb < 50,
            },
        )
    finally:
        cs.stop_service(svc)


def _warm(url: str) -> None:
    for q in QUERIES:
        httpx.get(url + "/v1/search", params={"q": q, "k": "10"}, timeout=30)


RUNNERS = {"valkey": exp_valkey, "postgres": exp_postgres, "worker": exp_worker,
           "slowdb": exp_slowdb}  # fmt: skip


def run_chaos(cfg: ChaosConfig, progress: Progress = lambda _m: None) -> list[Outcome]:
    unknown = sorted(set(cfg.experiments) - set(EXPERIMENTS))
    if unknown:
        raise RunError(f"unknown experiment {unknown[0]!r}: expected one of {EXPERIMENTS}")
    if cfg.driver not in DRIVERS:
        raise RunError(f"unknown driver {cfg.driver!r}: expected one of {sorted(DRIVERS)}")
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with chaos_stack(cfg.out_dir / "stack", progress) as cs:
        for name in cfg.experiments:
            progress(f"experiment {name}: {cfg.rate:g} req/s for {cfg.duration_s:g} s")
            outcome = RUNNERS[name](cs, cfg, DRIVERS[cfg.driver], progress)
            progress(f"experiment {name}: {'ok' if outcome.ok else 'FAILED'}")
            outcomes.append(outcome)
    write_report(cfg, outcomes)
    return outcomes


def write_report(cfg: ChaosConfig, outcomes: Sequence[Outcome]) -> None:
    doc = {
        "version": 1,
        "driver": cfg.driver,
        "rate": cfg.rate,
        "duration_s": cfg.duration_s,
        "experiments": [{**asdict(o), "ok": o.ok} for o in outcomes],
    }
    (cfg.out_dir / "chaos.json").write_text(json.dumps(doc, indent=2) + "\n")
    (cfg.out_dir / "chaos.md").write_text(chaos_table(cfg, outcomes))
