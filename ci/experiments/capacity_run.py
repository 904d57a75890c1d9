"""The capacity run: one seeded stack, both services, every round and mix, interleaved.

PostgreSQL and Valkey of its own (``ci.stack.ServerSet``, free loopback ports), the
corpus seeded once (MiniLM embeddings come from the on-disk cache after the first time),
then two services side by side, each one uvicorn worker with the same options:
``service`` (the checkout's service) and ``reference`` (the ASGI factory that
``CapacityConfig.reference_app`` names, perf.toml ``[capacity] reference_app``: the
straightforward implementation, which embeds per request and runs one query, no cache).

Per round, the mixes run in a shuffled order; per mix both ladders advance step by step,
the two services in a random order at each step, so that a drift of the machine hits
both. The Zipf mix first sends every distinct query of the log once to each service (the
steady state of a long-running service on that log: its cache has seen them all); the
all-unique mix sends every request a text never sent before in the run, so every
request of the service is a miss of every cache layer.

``lock``: a file to ``flock`` around each (round, mix), so that other measurements on a
shared machine wait for a few minutes, not for the whole run.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ci import stack
from ci.errors import ConfigError, RunError
from ci.experiments.capacity import REFERENCE, CapacityConfig, CapacityPoint, Ladder
from ci.measure.capacity import StepMeasure, StepSpec, run_step
from ci.measure.k6 import find_k6
from ci.seed import seed_corpus
from ci.seed.querymix import unique_queries, write_query_file
from ci.settings import SlaConfig, repo_sla

Progress = Callable[[str], None]
RunStep = Callable[[StepSpec, str], StepMeasure]  # (spec, name) -> figures
QUERY_MARGIN = 1.05  # a sequential step's file holds this many times its iterations, + 10


@contextlib.contextmanager
def held(lock: Path | None, progress: Progress) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` for the block (nothing when None)."""
    if lock is None:
        yield
        return
    with lock.open("a") as fh:
        progress(f"waiting for the lock {lock}")
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(slots=True)
class QuerySource:
    """Fresh all-unique query files, one per step; no text is handed out twice."""

    folder: Path
    seed: int
    next_position: int = 0
    files: int = 0

    def fresh(self, iterations: int) -> Path:
        count = int(iterations * QUERY_MARGIN) + 10
        queries = unique_queries(self.seed, self.next_position, count)
        self.files += 1
        path = self.folder / f"unique-{self.files:04d}.json"
        write_query_file(path, queries, seed=self.seed, start=self.next_position)
        self.next_position += count
        return path


class CapacityRun:
    """The steps of one capacity run against services already listening."""

    def __init__(
        self,
        config: CapacityConfig,
        urls: dict[str, str],
        zipf_log: Path,
        out_dir: Path,
        run_step: RunStep,
        progress: Progress,
        lock: Path | None = None,
    ) -> None:
        services = config.services
        assert set(urls) == set(services), f"need a URL per service, got {sorted(urls)}"
        self.services = services
        self.config = config
        self.urls = urls
        self.zipf_log = zipf_log
        self.out_dir = out_dir
        self.run_step = run_step
        self.progress = progress
        self.lock = lock
        self.unique = QuerySource(out_dir / "queries", config.seed)
        self.rng = random.Random(config.order_seed)
        self.points: list[CapacityPoint] = []

    def spec(self, service: str, rate: int, query_file: Path, sequential: bool) -> StepSpec:
        c = self.config
        return StepSpec(
            base_url=self.urls[service],
            rate=rate,
            query_file=query_file,
            sequential=sequential,
            warmup_s=c.warmup_s,
            measure_s=c.measure_s,
            p99_ms=c.p99_ms,
            max_dropped_fraction=c.max_dropped_fraction,
        )

    def run(self) -> list[CapacityPoint]:
        for rnd in range(1, self.config.repeat + 1):
            mixes = list(self.config.mixes)
            self.rng.shuffle(mixes)
            for mix in mixes:
                with held(self.lock, self.progress):
                    self.round(rnd, mix)
        return self.points

    def warm_zipf(self, rnd: int, distinct: int) -> None:
        c = self.config
        for service in self.services:
            spec = StepSpec(
                base_url=self.urls[service],
                rate=c.zipf_warm_rate,
                query_file=self.zipf_log,
                sequential=True,
                warmup_s=0,
                measure_s=max(1.0, distinct / c.zipf_warm_rate),
                p99_ms=c.p99_ms,
                max_dropped_fraction=1.0 - 1e-9,
            )
            self.progress(f"round {rnd}, zipf: {service} warm-up, {distinct} distinct queries")
            self.run_step(spec, f"r{rnd}-zipf-{service}-warm")

    def round(self, rnd: int, mix: str) -> None:
        c = self.config
        if mix == "zipf":
            self.warm_zipf(rnd, zipf_distinct(self.zipf_log))
        ladders = {
            s: Ladder(c.start_rate, c.factor, c.max_rate, c.resolution) for s in self.services
        }
        step = 0
        while True:
            active = [s for s in self.services if ladders[s].next_rate() is not None]
            if not active:
                break
            step += 1
            self.rng.shuffle(active)
            for service in active:
                rate = ladders[service].next_rate()
                assert rate is not None, "an active ladder has a next rate"
                spec = self.spec(service, rate, self.zipf_log, sequential=False)
                if mix == "unique":
                    spec = self.spec(service, rate, self.unique.fresh(spec.iterations), True)
                m = self.run_step(spec, f"r{rnd}-{mix}-{service}-{step:02d}-{rate}")
                ladders[service].record(rate, m.passed)
                self.points.append(CapacityPoint.of(service, mix, rnd, step, m))
                verdict = "pass" if m.passed else ("FAIL (stopped early)" if m.aborted else "FAIL")
                self.progress(
                    f"round {rnd}, {mix}, {service} at {rate}/s: p50 {m.p50_ms:.1f} "
                    f"p99 {m.p99_ms:.1f} ms, {m.achieved_rps:.0f}/s answered, errors "
                    f"{m.failed_rate:.2%}, dropped {m.dropped}: {verdict}"
                )
        caps = ", ".join(f"{s} {ladders[s].capacity}/s" for s in self.services)
        self.progress(f"round {rnd}, {mix}: capacity {caps}")


def zipf_distinct(path: Path) -> int:
    import json

    try:
        return len(json.loads(path.read_text())["queries"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: unreadable query log: {exc}") from exc


def k6_step_runner(out_dir: Path, sla: SlaConfig) -> RunStep:
    """Steps run by the real k6, their summaries and logs under ``out_dir/steps``."""
    binary = find_k6()
    env = sla.k6_env()

    def run(spec: StepSpec, name: str) -> StepMeasure:
        return run_step(spec, binary, out_dir / "steps", name, env)

    return run


def execute(
    config: CapacityConfig,
    out_dir: Path,
    progress: Progress,
    *,
    service_env: dict[str, str] | None = None,
    lock: Path | None = None,
    sla: SlaConfig | None = None,
) -> list[CapacityPoint]:
    """Start the stack and both services, seed, run every round; stop everything after."""
    if config.reference_app is None:
        raise ConfigError(
            "no reference service to measure against: set perf.toml [capacity] reference_app "
            "or pass --reference-app MODULE:FUNCTION"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "SEARCH_EMBEDDER": config.embedder,
        "SEARCH_INDEX_MODE": "hnsw",
        **(service_env or {}),
    }
    progress("starting PostgreSQL and Valkey")
    servers = stack.start_server_set(stack.loopback_settings(out_dir / "stack"))
    try:
        progress(f"seeding {config.docs} documents ({config.embedder})")
        seeded = seed_corpus(out_dir / "stack", servers.pg.url, config.docs, config.seed, env)
        urls: dict[str, str] = {}
        variants = {v.name: v for v in config.variants}
        for name in config.services:
            app = config.reference_app if name == REFERENCE else None
            variant = variants.get(name)
            own = {**env, **dict(variant.env if variant else ())}
            root = Path(variant.code_root) if variant and variant.code_root else None
            comp = servers.start_service(
                out_dir / name, workers=1, service_env=own, app=app, code_root=root
            )
            ready, reason = stack.service_readiness(comp.url)
            if not ready:
                raise RunError(f"the {name} is up but not ready: {reason}")
            progress(f"{name} (pid {comp.pid}) on {comp.url}")
            urls[name] = comp.url
        run = CapacityRun(
            config,
            urls,
            seeded.query_log_path,
            out_dir,
            k6_step_runner(out_dir, sla or repo_sla()),
            progress,
            lock,
        )
        return run.run()
    finally:
        servers.close(remove_data=True)
