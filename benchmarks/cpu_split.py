"""Where a request's CPU goes: the service and the reference at fixed open-model rates.

``python -m benchmarks.cpu_split [--rates 100,175] [--mix unique|zipf] [--env NAME=V]
[--server uvicorn|granian] [--py-spy DIR]`` starts the capacity run's stack (PostgreSQL,
Valkey, the seeded MiniLM corpus, both services with one uvicorn worker:
``ci.experiments.capacity_run``; the reference is perf.toml ``[capacity] reference_app``),
runs one k6 step of ``scenarios/capacity.js`` per rate and service (3 s warm-up, 10 s
measured, all-unique queries or the warmed Zipf log), and prints one JSON line per step
with the CPU time spent per request over the step, read with psutil:

- ``main_ms``: the service's event-loop thread (HTTP, cache, database client);
- ``threads_ms``: its other threads (the model's calls run there);
- ``postgres_ms``: the PostgreSQL backends;
- ``rest_ms``: everything else on the machine (k6, Valkey, the kernel's own work);

and, for the service, the waits its ``/metrics`` counted: pool acquisitions that waited
over 100 ms, model calls and their mean batch size, garbage-collector pauses over 10 ms.
With ``--py-spy DIR`` each step is also sampled by py-spy (``DIR/<service>-<rate>.txt``,
collapsed stacks by thread, non-blocking: the samples of a thread waiting in C, such as
the event loop's poll, count as busy), and the row gets ``main_samples``: the shares of
the event loop's samples in Redis, database, metrics, model dispatch, HTTP, the loop's own
C code and the rest (:data:`SPY_PARTS`). ``--server granian`` runs both services under
granian (``pip install granian``) instead of uvicorn; its workers are children of the
process measured, so ``main`` and ``threads`` read 0 and their CPU counts in ``rest``:
compare ``all``. The services take turns, so both see the same machine. CPU seconds per
request, not latency: what decides a saturated 2-core machine's capacity.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from ci import stack
from ci.experiments.capacity_run import QuerySource, k6_step_runner
from ci.measure.capacity import StepSpec
from ci.seed import seed_corpus
from ci.settings import load_perf_config

WARMUP_S = 3.0
MEASURE_S = 10.0


def _threads(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def _children_cpu(parent: int) -> float:
    """CPU of ``parent``'s live children and of the ones it reaped (not its own)."""
    proc = psutil.Process(parent)
    total = 0.0
    for child in proc.children():
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # ended meanwhile: its time is in the reaped children's once reaped
        total += times.user + times.system
    times = proc.cpu_times()
    return total + times.children_user + times.children_system


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine: all but idle and iowait (guest time is
    already counted in user time)."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return sum(t) - idle - guest


class Sample:
    """CPU counters at one instant."""

    def __init__(self, service_pid: int, postgres_pid: int) -> None:
        self.threads = _threads(service_pid)
        self.main = self.threads.get(service_pid, 0.0)
        self.others = sum(v for t, v in self.threads.items() if t != service_pid)
        self.postgres = _children_cpu(postgres_pid)
        self.machine = _machine_cpu()


def _metric_values(url: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}  # the reference has no /metrics
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(search_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _waits(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    def d(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    if not after:
        return {}
    acq = "search_db_pool_acquire_wait_seconds"
    calls = d("search_embed_batch_size_count")
    gc_long = sum(
        d(f'search_gc_pause_seconds_count{{generation="{g}"}}')
        - d(f'search_gc_pause_seconds_bucket{{generation="{g}",le="0.01"}}')
        for g in (0, 1, 2)
    )
    gc_ms = sum(d(f'search_gc_pause_seconds_sum{{generation="{g}"}}') for g in (0, 1, 2)) * 1000
    return {
        "gc_pause_ms": round(gc_ms, 1),
        "pool_waits_over_100ms": int(d(f"{acq}_count") - d(f'{acq}_bucket{{le="0.1"}}')),
        "model_calls": int(calls),
        "mean_batch": round(d("search_embed_batch_size_sum") / calls, 2) if calls else None,
        "gc_pauses_over_10ms": int(gc_long),
    }


def _record(spy: str, pid: int, folder: Path, name: str) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` for the step's length (warm-up included), collapsed stacks by
    thread; its sampling costs some CPU, so a profiled step's figures read a bit high."""
    folder.mkdir(parents=True, exist_ok=True)
    seconds = str(int(WARMUP_S + MEASURE_S))
    cmd = [spy, "record", "--pid", str(pid), "--duration", seconds, "--rate", "250"]
    cmd += ["--format", "raw", "--threads", "--nonblocking", "-o", str(folder / f"{name}.txt")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# What the event loop's py-spy samples were doing: the first of these whose module is in
# the sample's stack, in this order; a sample whose innermost frame is the loop's run
# (uvloop's C code: socket I/O, or a poll wrongly counted as busy) is "loop".
SPY_PARTS = (
    ("redis", ("redis/",)),
    ("database", ("asyncpg/", "service/db/")),
    ("metrics", ("prometheus_client/",)),
    ("model dispatch", ("service/embed/", "asyncio/threads.py")),
    ("http", ("uvicorn/", "starlette/", "service/http/")),
)


def spy_parts(path: Path) -> dict[str, float]:
    """Shares of the main thread's samples in a ``py-spy record --format raw --threads``
    file, by :data:`SPY_PARTS`."""
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not n.isdigit() or "MainThread" not in frames[0]:
            continue
        part = "loop" if frames[-1].startswith("Runner.run ") else "other"
        if part == "other":
            part = next((p for p, mods in SPY_PARTS if any(m in stack for m in mods)), part)
        counts[part] = counts.get(part, 0) + int(n)
    total = sum(counts.values()) or 1
    return {p: round(c / total, 3) for p, c in sorted(counts.items(), key=lambda x: -x[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,175", help="req/s, comma-separated")
    parser.add_argument("--mix", choices=("unique", "zipf"), default="unique")
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("reports") / "cpu-split")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="SEARCH_NAME=VALUE",
        help="a setting of both services (repeatable), e.g. SEARCH_POOL_MIN_SIZE=2",
    )
    parser.add_argument(
        "--server", choices=("uvicorn", "granian"), default="uvicorn", help="both services'"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="also record each service step with py-spy (collapsed stacks, one file per step)",
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy") if args.py_spy is not None else None
    if args.py_spy is not None and spy is None:
        raise SystemExit("--py-spy: the py-spy command is not on PATH (pip install py-spy)")
    extra = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith(("SEARCH_", "REFERENCE_")):
            raise SystemExit(f"--env {item!r}: expected SEARCH_NAME=VALUE")
        extra[name] = value
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        raise SystemExit(f"--rates {args.rates!r}: expected integers, e.g. 100,175") from None
    perf = load_perf_config()
    if perf.capacity.reference_app is None:
        raise SystemExit("perf.toml [capacity] reference_app names no reference service")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = {"SEARCH_EMBEDDER": "minilm", "SEARCH_INDEX_MODE": "hnsw", **extra}
    servers = stack.start_server_set(stack.loopback_settings(out / "stack", server=args.server))
    try:
        seeded = seed_corpus(out / "stack", servers.pg.url, args.docs, args.seed, env)
        apps = {"service": None, "reference": perf.capacity.reference_app}
        services = {
            name: servers.start_service(out / name, workers=1, service_env=env, app=app)
            for name, app in apps.items()
        }
        source = QuerySource(out / "queries", args.seed)
        run = k6_step_runner(out, perf.sla)
        assert servers.pg.pid is not None, "the stack's PostgreSQL has a pid"
        for rate in rates:
            for name, comp in services.items():
                assert comp.pid is not None, "a started service has a pid"

                def spec(
                    file: Path, sequential: bool, rate: int = rate, url: str = comp.url
                ) -> StepSpec:
                    return StepSpec(url, rate, file, sequential, WARMUP_S, MEASURE_S, 100.0, 0.001)

                if args.mix == "unique":
                    step = spec(source.fresh(spec(Path("-"), True).iterations), True)
                else:  # the log's every query once, then by weight: all hits
                    warm = StepSpec(
                        comp.url, 200, seeded.query_log_path, True, 0, 10.0, 100.0, 1.0 - 1e-9
                    )
                    run(warm, f"{name}-{rate}-warm")
                    step = spec(seeded.query_log_path, False)
                m0 = _metric_values(comp.url)
                recorder = _record(spy, comp.pid, args.py_spy, f"{name}-{rate}") if spy else None
                s0, t0 = Sample(comp.pid, servers.pg.pid), time.monotonic()
                m = run(step, f"{name}-{rate}")
                spied: dict[str, Any] = {}
                if recorder is not None:
                    recorder.wait(timeout=60)
                    spy_file = args.py_spy / f"{name}-{rate}.txt"
                    if spy_file.is_file():
                        spied = {"main_samples": spy_parts(spy_file)}
                s1, wall = Sample(comp.pid, servers.pg.pid), time.monotonic() - t0
                served = rate * wall  # warm-up included: its CPU is in the counters too

                def per(a: float, b: float, served: float = served) -> float:
                    return round((b - a) / served * 1000, 2)

                main_ms = per(s0.main, s1.main)
                threads_ms = per(s0.others, s1.others)
                postgres_ms = per(s0.postgres, s1.postgres)
                machine_ms = per(s0.machine, s1.machine)
                row = {
                    "service": name,
                    "mix": args.mix,
                    "rate": rate,
                    "p50_ms": round(m.p50_ms, 1),
                    "p99_ms": round(m.p99_ms, 1),
                    "passed": m.passed,
                    "cpu_ms_per_request": {
                        "main": main_ms,
                        "threads": threads_ms,
                        "postgres": postgres_ms,
                        "rest": round(machine_ms - main_ms - threads_ms - postgres_ms, 2),
                        "all": machine_ms,
                    },
                    **_waits(m0, _metric_values(comp.url)),
                    **spied,
                }
                print(json.dumps(row), flush=True)
    finally:
        servers.close(remove_data=True)


if __name__ == "__main__":
    main()
