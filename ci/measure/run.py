"""``perfci run``: start (or reach) the service, seed, warm up, run each scenario, collect.

Per scenario: k6 (or vegeta) runs while the service processes and PostgreSQL are
sampled; ``/v1/stats`` is read before and after. Everything lands in
``<out>/<run-id>/``: raw tool outputs and ``results.json`` (written through ci.results).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from ci import stack
from ci.errors import RunError
from ci.measure import collect, k6, launch, memory, vegeta, vegeta_targets
from ci.measure.diagnose import Diagnoser
from ci.measure.profiles import SCENARIO_SCRIPTS, Profile
from ci.measure.sample import DatabaseSampler, ProcessSampler
from ci.results import (
    Corpus,
    Diagnostics,
    MemoryGrowth,
    Resources,
    ResourceSample,
    RunMeta,
    RunResults,
    ScenarioResult,
    ThresholdOutcome,
    Tools,
    dump_results,
)
from ci.seed import seed_corpus, write_query_log
from ci.settings import SlaConfig, StackSettings, repo_sla

Progress = Callable[[str], None]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
FALLBACK_LABEL = "vegeta fallback: vegeta is not installed; same targets and rate through k6"
WARMUP_QUERIES = 50
# The RSS trend of a scenario ignores its start: pools fill, allocator arenas grow and
# caches warm there, which is not a leak. Measured with the hash embedder and caches off,
# a sound service's RSS rises ~2 MB over the first ~30 s of constant load, then is flat;
# so: a fifth of the scenario, at least 30 s, at most 5 minutes, never over half of it.
MEMORY_WARMUP_FRACTION = 0.2
MEMORY_WARMUP_MIN_S = 30.0
MEMORY_WARMUP_MAX_S = 300.0


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What ``perfci run`` was asked to do (built by the CLI from arguments and settings)."""

    profile: Profile
    scenarios: tuple[str, ...]
    out_dir: Path
    stack: StackSettings
    target: str | None = None
    seed: int = 42
    rss_slope_mb_per_10min: float = 5.0  # perf.toml [sla]: a process above it is leaking
    # perf.toml [sla]: k6 thresholds (PERFCI_SLA_* variables) and vegeta's threshold outcomes
    sla: SlaConfig = dataclasses.field(default_factory=repo_sla)
    profile_cpu: bool = False  # py-spy flame graph + speedscope per worker and scenario
    profile_memory: bool = False  # tracemalloc growth from end of warm-up to end of run
    runners: int = 1  # k6 runners, each one execution segment (ci.measure.segments)
    runner_hosts: tuple[launch.RunnerHost, ...] = ()  # where each runs (default: here)
    k6_operator: str | None = None  # a namespace: the runners are k6-operator pods there


@dataclass(frozen=True, slots=True)
class Target:
    """The running service a run measures, and what is known about it."""

    base_url: str
    query_log: Path
    service_pid: int | None
    service_port: int | None
    database_url: str | None
    corpus: Corpus | None
    service_env: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_dir: Path
    results: RunResults
    failed: tuple[tuple[str, ThresholdOutcome], ...]  # (scenario, threshold) that failed
    peak_connections: Mapping[str, int]  # scenario -> peak ESTABLISHED on the service port
    diagnostics: Diagnostics = dataclasses.field(default_factory=Diagnostics)


def execute(request: RunRequest, progress: Progress) -> RunOutcome:
    """Run the profile's scenarios, write ``results.json``; raise RunError/StackError/SeedError.

    The run folder is self-contained: its report is rendered from it afterwards
    (``ci.render.report.rerender_run``, as ``perfci run`` and ``perfci report`` do).
    """
    binary = k6.find_k6()
    created = datetime.now(UTC)
    run_id = f"{created:%Y%m%dT%H%M%SZ}-{request.profile.name}"
    run_dir = request.out_dir / run_id
    options = preflight(request, binary, progress)
    # on k6-operator --target is the URL the cluster's pods reach, perhaps not this machine
    in_cluster = request.k6_operator is not None
    if request.target is not None and not in_cluster:
        _check_target(request.target)
    run_dir.mkdir(parents=True, exist_ok=False)
    progress(f"run {run_id}: profile {request.profile.name}, {', '.join(request.scenarios)}")
    with _target(request, run_dir, progress) as target:
        diag = Diagnoser(
            run_dir, target.base_url, target.service_pid, target.database_url,
            target.service_env, request.profile_cpu, request.profile_memory,
            explain_query(target.query_log),
        )  # fmt: skip
        if in_cluster:
            progress(
                "k6-operator: no health check or warm-up from here; the runners load the target"
            )
        else:
            _warm_up(target, progress)
        diag.after_warm_up()
        scenarios = []
        peaks: dict[str, int] = {}
        for i, name in enumerate(request.scenarios, start=1):
            progress(f"[{i}/{len(request.scenarios)}] scenario {name}")
            result, peak = _run_scenario(
                name, request.profile, target, run_dir, binary, progress, diag, request.sla,
                runners=request.runners, hosts=request.runner_hosts, options=options.get(name),
                namespace=request.k6_operator,
            )  # fmt: skip
            result = msgspec.structs.replace(
                result,
                memory=_memory(
                    result.resources.samples,
                    request.rss_slope_mb_per_10min,
                    request.profile.memory_window_s,
                ),
            )
            if result.memory is not None:
                m = result.memory
                progress(
                    f"  {name}: RSS {m.rss_slope_mb_per_10min:+.2f} MB/10 min "
                    f"[{m.ci_low:+.2f}, {m.ci_high:+.2f}]: "
                    f"{'LEAKING' if m.leaking else 'stable'}"
                )
            scenarios.append(result)
            if peak is not None:
                peaks[name] = peak
        diagnostics = diag.finish()
        if links := k6.dashboard_links(run_dir, request.scenarios):
            profiles = (*diagnostics.profiles, *links)
            diagnostics = msgspec.structs.replace(diagnostics, profiles=profiles)
        for problem in diagnostics.problems:
            progress(f"  diagnosis: {problem}")
    commit, ref = collect.git_info(PROJECT_ROOT)
    vegeta_bin = vegeta.find_vegeta()
    results = RunResults(
        run=RunMeta(
            id=run_id,
            created_at=created.isoformat(timespec="seconds"),
            git_commit=commit,
            git_ref=ref,
            profile=request.profile.name,
            machine=collect.machine(),
            tools=Tools(
                k6=k6.k6_version(binary),
                vegeta=vegeta.vegeta_version(vegeta_bin) if vegeta_bin else None,
            ),
            settings={
                **request.profile.settings(),
                **{f"peak_connections_{n}": v for n, v in peaks.items()},
            },
            corpus=target.corpus,
            target=target.base_url,
        ),
        scenarios=tuple(scenarios),
        diagnostics=diagnostics,
    )
    dump_results(results, run_dir / "results.json")
    failed = tuple((s.name, t) for s in results.scenarios for t in s.thresholds if not t.ok)
    return RunOutcome(run_dir, results, failed, peaks, diagnostics)


def preflight(request: RunRequest, binary: Path, progress: Progress) -> dict[str, dict[str, Any]]:
    """With several runners (or k6-operator): each k6 scenario's checked options, before
    anything starts (:func:`ci.measure.launch.preflight_scenarios`)."""
    if request.runners < 2 and request.k6_operator is None:
        return {}
    if request.runner_hosts and len(request.runner_hosts) != request.runners:
        raise RunError(f"{len(request.runner_hosts)} runner hosts for {request.runners} runners")
    scripts = {
        name: k6.SCENARIOS_DIR / SCENARIO_SCRIPTS[name]
        for name in request.scenarios
        # vegeta splits its own rate; on k6-operator its k6 replay runs
        if name != "vegeta" or vegeta.find_vegeta() is None or request.k6_operator
    }
    env = {**request.profile.k6_env(), **request.sla.k6_env()}
    return launch.preflight_scenarios(binary, scripts, env, request.runners, progress)


def _memory(
    samples: tuple[ResourceSample, ...], threshold: float, min_window_s: float
) -> MemoryGrowth | None:
    """The RSS trend of the serving processes after the scenario's warm-up (None: too short).

    With one process (uvicorn --workers 1) the sampler calls it "master"; with several,
    the master only supervises and the "worker" children serve.
    """
    if not samples:
        return None
    roles = ("worker",) if any(s.role == "worker" for s in samples) else ("master",)
    end = max(s.t for s in samples)
    warmup = min(
        MEMORY_WARMUP_MAX_S, max(MEMORY_WARMUP_MIN_S, MEMORY_WARMUP_FRACTION * end), 0.5 * end
    )
    if end - warmup < min_window_s:
        return None
    trends = memory.trends_by_process(samples, threshold, warmup_s=warmup, roles=roles)
    return memory.memory_growth(trends)


# -- the target ----------------------------------------------------------------------------


@contextlib.contextmanager
def _target(request: RunRequest, run_dir: Path, progress: Progress) -> Iterator[Target]:
    if request.target is not None:
        yield _external_target(request, run_dir)
        return
    profile = request.profile
    env = {**request.stack.service_env, "SEARCH_EMBEDDER": profile.embedder}
    # A fresh admin token for this run's service only: EXPLAIN (and tracemalloc) go through
    # its admin routes.
    env["SEARCH_ADMIN_TOKEN"] = secrets.token_urlsafe(16)
    settings = request.stack.with_overrides(service_env=env)
    with stack.running_stack(settings, progress) as state:
        seeded = seed_corpus(
            settings.run_dir, state.database_url, profile.docs, request.seed, env, progress=progress
        )
        yield Target(
            base_url=state.service_url,
            query_log=seeded.query_log_path,
            service_pid=state.service.pid,
            service_port=settings.service_port,
            database_url=state.database_url,
            corpus=Corpus(profile.docs, request.seed, profile.embedder, seeded.corpus_hash),
            service_env=env,
        )
        progress("stopping the stack")


def _check_target(target: str) -> None:
    base = target.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RunError(f"--target {target!r} is invalid: expected http(s)://host[:port]")
    try:
        httpx.get(f"{base}/healthz", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise RunError(f"--target {base} does not answer GET /healthz: {exc}") from exc


def _external_target(request: RunRequest, run_dir: Path) -> Target:
    base = request.target.rstrip("/") if request.target else ""
    parts = urlsplit(base)
    known_log = request.stack.run_dir / "corpus" / "querylog.json"
    query_log = known_log if known_log.exists() else write_query_log(run_dir, request.seed)
    # Sample processes only when the target is the stack recorded in the run dir.
    state = stack.load_state(request.stack.run_dir)
    own = state is not None and state.service_url.rstrip("/") == base
    return Target(
        base_url=base,
        query_log=query_log,
        service_pid=state.service.pid if own and state else None,
        service_port=parts.port if own else None,
        database_url=request.stack.database_url or (state.database_url if own and state else None),
        corpus=None,
        service_env=dict(state.service_env) if own and state else {},
    )


def explain_query(query_log: Path) -> str | None:
    """The most popular query without a topic filter: the one ``explain.txt`` shows."""
    try:
        queries = json.loads(query_log.read_text())["queries"]
    except (OSError, ValueError, KeyError):
        return None
    plain = [q for q in queries if not q.get("topic")]
    return str(max(plain, key=lambda q: float(q["weight"]))["q"]) if plain else None


def _warm_up(target: Target, progress: Progress) -> None:
    """Touch the most popular queries twice so the first scenario does not pay cold caches."""
    log = json.loads(target.query_log.read_text())
    popular = sorted(log["queries"], key=lambda q: -float(q["weight"]))[:WARMUP_QUERIES]
    t0 = time.monotonic()
    with httpx.Client(base_url=target.base_url, timeout=30.0) as client:
        for _ in range(2):
            for q in popular:
                params = {"q": q["q"], "k": q["k"], **({"topic": q["topic"]} if q["topic"] else {})}
                try:
                    client.get("/v1/search", params=params).raise_for_status()
                except httpx.HTTPError as exc:
                    raise RunError(f"warm-up search {q['q']!r} failed: {exc}") from exc
    progress(f"warmed up with {len(popular)} popular queries in {time.monotonic() - t0:.1f} s")


# -- one scenario --------------------------------------------------------------------------


def _stats(target: Target) -> dict[str, Any]:
    try:
        response = httpx.get(f"{target.base_url}/v1/stats", timeout=5.0)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _Ticker:
    """Progress while a tool runs: elapsed, remaining, request rate from /v1/stats."""

    def __init__(self, name: str, target: Target, planned_s: float | None, out: Progress):
        self._name, self._target, self._planned, self._out = name, target, planned_s, out
        self._last: tuple[float, float] | None = None

    def __call__(self, elapsed: float) -> None:
        now = time.monotonic()
        requests = _stats(self._target).get("requests")
        rate = ""
        if isinstance(requests, int | float):
            if self._last is not None and now > self._last[0]:
                rate = f", {(requests - self._last[1]) / (now - self._last[0]):.0f} req/s"
            self._last = (now, float(requests))
        left = f", ~{max(0.0, self._planned - elapsed):.0f} s left" if self._planned else ""
        self._out(f"  {self._name}: {elapsed:.0f} s elapsed{left}{rate}")


def _run_scenario(
    name: str,
    profile: Profile,
    target: Target,
    run_dir: Path,
    binary: Path,
    progress: Progress,
    diag: Diagnoser | None = None,
    sla: SlaConfig | None = None,
    *,
    runners: int = 1,
    hosts: tuple[launch.RunnerHost, ...] = (),
    options: dict[str, Any] | None = None,
    namespace: str | None = None,
) -> tuple[ScenarioResult, int | None]:
    sla = sla or repo_sla()
    env = {
        **profile.k6_env(),
        **sla.k6_env(),
        "BASE_URL": target.base_url,
        "QUERY_LOG": str(target.query_log.resolve()),
    }
    # on k6-operator the vegeta scenario is its k6 replay (constant_rate.js)
    vegeta_bin = vegeta.find_vegeta() if name == "vegeta" and namespace is None else None
    prepared = None
    if name == "vegeta":
        # writes like the k6 mix: DELETE targets remove scratch documents (vegeta_targets)
        prepared = vegeta_targets.prepare_targets(
            target.query_log, target.base_url, run_dir / "vegeta.targets.jsonl",
            rate=profile.rate * profile.vu_scale, duration_s=profile.attack_s,
            write_fraction=profile.write_fraction,
        )  # fmt: skip
        env["TARGETS"] = str(prepared.path.resolve())
        if vegeta_bin is None:
            progress("  vegeta is not installed: running the same constant-rate attack with k6")
    processes = (
        ProcessSampler(target.service_pid, target.service_port)
        if target.service_pid is not None and target.service_port is not None
        else None
    )
    database = DatabaseSampler(target.database_url) if target.database_url else None
    before = _stats(target)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    for sampler in (processes, database):
        if sampler is not None:
            sampler.start()
    if diag is not None and vegeta_bin is not None:
        diag.scenario_started(name, profile.attack_s)
    try:
        if vegeta_bin is not None:
            planned: float | None = profile.attack_s
            files = vegeta.attack(
                vegeta_bin, Path(env["TARGETS"]), profile.rate * profile.vu_scale,
                profile.attack_s, run_dir, runners,
            )  # fmt: skip
        else:
            inv = k6.invocation(SCENARIO_SCRIPTS[name], env, run_dir, name)
            planned = k6.planned_duration(inv, binary)
            if runners == 1 and planned is not None and planned >= k6.DASHBOARD_MIN_S:
                inv = k6.with_dashboard(inv, k6.dashboard_path(run_dir, name))
            if diag is not None:
                diag.scenario_started(name, planned)
            ticker = _Ticker(name, target, planned, progress)
            if runners > 1 or namespace is not None:
                assert options is not None, f"scenario {name}: no preflight for {runners} runners"
                merged = launch.run_split(
                    inv, binary, runners, options, hosts, namespace, ticker, progress
                )
            else:
                k6.run_k6(inv, binary, ticker)
    finally:
        resources = processes.stop() if processes else Resources((), None)
        db_figures = database.stop() if database else None
        if diag is not None:
            diag.scenario_stopped(name)
    if database is not None and database.error:
        progress(f"  database sampling failed, figures omitted: {database.error}")
    cache = collect.cache_figures(before, _stats(target)) if before else None
    if vegeta_bin is not None:
        try:
            lines = files.encoded.read_text().splitlines()
        except OSError as exc:
            raise RunError(f"{files.encoded}: cannot read vegeta's results: {exc}") from exc
        hits = vegeta.parse_encoded(lines, source=str(files.encoded))
        several = f" of the {runners} runners' files" if runners > 1 else ""
        progress(f"  vegeta report{several}:\n" + files.text_report.read_text().rstrip())
        result = collect.scenario_from_vegeta(
            name, hits, started_at=started_at, cache=cache, database=db_figures,
            resources=resources, sla=sla,
        )  # fmt: skip
    else:
        raw: k6.RawSamples | None
        if runners > 1 or namespace is not None:
            summary, raw = merged
        else:
            summary = k6.parse_summary(_read_json(inv.summary_path), source=str(inv.summary_path))
            raw = k6.read_raw_csv(inv.raw_path) if inv.raw_path.exists() else None
        fallback = name == "vegeta"
        result = collect.scenario_from_k6(
            name, summary, raw, started_at=started_at,
            label=FALLBACK_LABEL if fallback else None,
            tool="k6-constant-arrival-rate" if fallback else "k6",
            cache=cache, database=db_figures, resources=resources,
        )  # fmt: skip
    if prepared is not None:  # the corpus keeps its size (ci.measure.vegeta_targets)
        vegeta_targets.finish_targets(
            target.base_url, prepared, lines if vegeta_bin is not None else ()
        )
    peak = processes.peak_connections if processes else None
    progress(
        f"  {name}: {result.requests} requests, {result.throughput_rps:.0f} req/s, "
        f"p95 {result.latency_ms.p95:.1f} ms, errors {result.error_rate:.2%}"
        + (f", peak connections {peak}" if peak is not None else "")
    )
    return result, peak


def dry_run(request: RunRequest, progress: Progress) -> str:
    """What ``perfci run --dry-run`` prints: each runner's argv, or the k6-operator
    manifests; preflight runs, nothing else does."""
    import tempfile

    binary = k6.find_k6()
    preflight(request, binary, progress)
    with tempfile.TemporaryDirectory(prefix="perfci-dry-run-") as tmp:
        env = {
            **request.profile.k6_env(),
            **request.sla.k6_env(),
            "BASE_URL": request.target or "http://127.0.0.1:8000",
            "QUERY_LOG": str(write_query_log(Path(tmp), request.seed).resolve()),
        }
        scripts = [(name, SCENARIO_SCRIPTS[name]) for name in request.scenarios]
        invocations = [k6.invocation(script, env, Path(tmp), name) for name, script in scripts]
        return launch.dry_run_text(binary, invocations, request.runners, request.k6_operator)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read the tool's output: {exc}") from exc
