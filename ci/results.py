"""The versioned results model: the boundary between measuring and judging.

A ``results.json`` file describes one run of the load-test scenarios. Everything after it
(compare, render, post) works from these files alone, so they are treated as untrusted
input: a file from a fork's artifact may be malformed, huge, or hostile. Every problem
surfaces as a :class:`ResultsError` naming the file and the JSON path of the bad value.

Validation happens in two layers:

1. the JSON Schema in ``ci/schema/results.schema.json`` (draft 2020-12): shapes and types;
2. semantic checks the schema cannot express: finite numbers, percentile order.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions

from ci.errors import ResultsError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
MAX_RESULTS_BYTES = 50 * 1024 * 1024
SCHEMA_PATH = Path(__file__).parent / "schema" / "results.schema.json"

SettingValue = str | int | float | bool | None
_PERCENTILE_ORDER = ("p50", "p90", "p95", "p99", "p999", "max")


@dataclass(frozen=True, slots=True)
class Machine:
    machine_class: str
    cpus: int
    memory_gb: float
    platform: str
    python: str


@dataclass(frozen=True, slots=True)
class Tools:
    k6: str | None
    vegeta: str | None


@dataclass(frozen=True, slots=True)
class Corpus:
    docs: int
    seed: int
    embedder: str
    hash: str


@dataclass(frozen=True, slots=True)
class RunMeta:
    id: str
    created_at: str
    git_commit: str | None
    git_ref: str | None
    profile: str
    machine: Machine
    tools: Tools
    settings: Mapping[str, SettingValue]
    corpus: Corpus | None
    target: str


@dataclass(frozen=True, slots=True)
class LatencySummary:
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    maximum: float
    minimum: float
    mean: float


@dataclass(frozen=True, slots=True)
class ThresholdOutcome:
    metric: str
    expression: str
    ok: bool


@dataclass(frozen=True, slots=True)
class CacheFigures:
    hit_ratio: float | None
    hits: int
    misses: int
    db_searches: int
    coalesced: int


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    calls: int
    total_exec_ms: float
    mean_exec_ms: float | None
    max_connections: int | None


@dataclass(frozen=True, slots=True)
class ResourceSample:
    t: float
    pid: int
    role: str
    rss_mb: float
    cpu_percent: float
    connections: int


@dataclass(frozen=True, slots=True)
class Resources:
    samples: tuple[ResourceSample, ...]
    peak_rss_mb: float | None


@dataclass(frozen=True, slots=True)
class TimePoint:
    t: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True, slots=True)
class MemoryGrowth:
    """Memory-growth estimate produced by the memory analysis (not computed here)."""

    rss_slope_mb_per_10min: float
    ci_low: float
    ci_high: float
    leaking: bool


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    tool: str
    label: str | None
    started_at: str
    duration_s: float
    requests: int
    throughput_rps: float
    error_rate: float
    latency_ms: LatencySummary
    ttfe_ms: LatencySummary | None
    dropped_iterations: int
    thresholds: tuple[ThresholdOutcome, ...]
    cache: CacheFigures | None
    database: DatabaseFigures | None
    resources: Resources
    timeseries: tuple[TimePoint, ...]
    memory: MemoryGrowth | None = None


@dataclass(frozen=True, slots=True)
class BenchmarkFigure:
    name: str
    group: str | None
    median_s: float
    iqr_s: float
    rounds: int


@dataclass(frozen=True, slots=True)
class RunResults:
    run: RunMeta
    scenarios: tuple[ScenarioResult, ...]
    benchmarks: tuple[BenchmarkFigure, ...] | None = None
    schema_version: int = SCHEMA_VERSION

    def scenario(self, name: str) -> ScenarioResult:
        """Return the scenario called ``name``; ``KeyError`` naming it when absent."""
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(f"no scenario {name!r} in run {self.run.id!r}")

    @property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)

    @classmethod
    def from_dict(cls, data: object, source: str = "<results>") -> RunResults:
        """Validate ``data`` (parsed JSON) and build the model.

        ``source`` names the file in error messages.
        """
        _validate(data, source)
        assert isinstance(data, dict)  # guaranteed by the schema
        return _build(data)

    def to_dict(self) -> dict[str, Any]:
        return _unbuild(self)


# -- loading and dumping -------------------------------------------------------------------


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read, validate and build one results file; every problem is a :class:`ResultsError`."""
    source = os.fspath(path)
    data = _read_json(source)
    return RunResults.from_dict(data, source)


def loads_results(text: str | bytes, source: str = "<results>") -> RunResults:
    """Like :func:`load_results` for an in-memory document."""
    if len(text) > MAX_RESULTS_BYTES:
        raise ResultsError(f"{source}: larger than {_limit_text()}; refusing to parse")
    return RunResults.from_dict(_parse_json(text, source), source)


def dump_results(results: RunResults, path: str | os.PathLike[str]) -> None:
    """Write ``results`` atomically (temp file in the same folder, then ``os.replace``)."""
    target = Path(path)
    data = results.to_dict()
    # Never write what we would refuse to read.
    RunResults.from_dict(data, os.fspath(target))
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_file(path: str | os.PathLike[str]) -> object:
    """Read an untrusted JSON file with the same limits as results files."""
    return _read_json(os.fspath(path))


def _read_json(source: str) -> object:
    try:
        with open(source, "rb") as fh:
            raw = fh.read(MAX_RESULTS_BYTES + 1)
    except OSError as exc:
        raise ResultsError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_RESULTS_BYTES:
        raise ResultsError(f"{source}: larger than {_limit_text()}; refusing to parse")
    return _parse_json(raw, source)


def _limit_text() -> str:
    mb, rest = divmod(MAX_RESULTS_BYTES, 1024 * 1024)
    return f"{mb} MB" if not rest else f"{MAX_RESULTS_BYTES} bytes"


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows to {value}")
    return value


def _parse_json(raw: str | bytes, source: str) -> object:
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{source}: not valid UTF-8 at byte {exc.start}") from exc
    except RecursionError as exc:
        raise ResultsError(f"{source}: JSON nested too deeply") from exc
    except ValueError as exc:  # from our hooks, or int() digit limits
        raise ResultsError(f"{source}: bad JSON number: {exc}") from exc


# -- validation ----------------------------------------------------------------------------


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def json_path(parts: Sequence[str | int]) -> str:
    """Render a JSON path like ``$.scenarios[0].latency_ms.p95``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _validate(data: object, source: str) -> None:
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: $: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if type(version) is not int:
        raise ResultsError(
            f"{source}: $.schema_version: expected an integer, got {_short(version)}"
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ResultsError(
            f"{source}: $.schema_version is {version}; this version of perfci reads "
            f"schema_version {supported} (upgrade perfci to read newer results)"
        )
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    except RecursionError as exc:
        raise ResultsError(f"{source}: document nested too deeply") from exc
    if error is not None:
        path = json_path(list(error.absolute_path))
        raise ResultsError(f"{source}: {path}: {_schema_message(error)}")
    _check_finite(data, [], source)
    for i, scenario in enumerate(data["scenarios"]):
        for key in ("latency_ms", "ttfe_ms"):
            summary = scenario[key]
            if summary is None:
                continue
            _check_percentiles(summary, ["scenarios", i, key], source)
    names = [s["name"] for s in data["scenarios"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ResultsError(f"{source}: $.scenarios: duplicate scenario name {duplicates[0]!r}")


def _schema_message(error: jsonschema.exceptions.ValidationError) -> str:
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return message


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_finite(value: object, path: list[str | int], source: str) -> None:
    # The schema has already bounded the nesting depth, so recursion is safe here.
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultsError(f"{source}: {json_path(path)}: non-finite number {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, [*path, key], source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, [*path, index], source)


def _check_percentiles(summary: dict[str, float], path: list[str | int], source: str) -> None:
    for lower, upper in itertools.pairwise(_PERCENTILE_ORDER):
        if summary[lower] > summary[upper]:
            raise ResultsError(
                f"{source}: {json_path([*path, upper])}: {upper} = {summary[upper]!r} is below "
                f"{lower} = {summary[lower]!r}; percentiles must not decrease"
            )
    if summary["min"] > summary["p50"]:
        raise ResultsError(
            f"{source}: {json_path([*path, 'min'])}: min = {summary['min']!r} is above "
            f"p50 = {summary['p50']!r}"
        )
    if not summary["min"] <= summary["mean"] <= summary["max"]:
        raise ResultsError(
            f"{source}: {json_path([*path, 'mean'])}: mean = {summary['mean']!r} lies outside "
            f"[min, max] = [{summary['min']!r}, {summary['max']!r}]"
        )


# -- building (data has been validated; the shapes below are guaranteed) ----------------------


def _latency(d: dict[str, Any] | None) -> LatencySummary | None:
    if d is None:
        return None
    return LatencySummary(
        p50=float(d["p50"]),
        p90=float(d["p90"]),
        p95=float(d["p95"]),
        p99=float(d["p99"]),
        p999=float(d["p999"]),
        maximum=float(d["max"]),
        minimum=float(d["min"]),
        mean=float(d["mean"]),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _build_scenario(d: dict[str, Any]) -> ScenarioResult:
    latency = _latency(d["latency_ms"])
    assert latency is not None
    cache = d["cache"]
    db = d["database"]
    memory = d.get("memory")
    return ScenarioResult(
        name=d["name"],
        tool=d["tool"],
        label=d["label"],
        started_at=d["started_at"],
        duration_s=float(d["duration_s"]),
        requests=d["requests"],
        throughput_rps=float(d["throughput_rps"]),
        error_rate=float(d["error_rate"]),
        latency_ms=latency,
        ttfe_ms=_latency(d["ttfe_ms"]),
        dropped_iterations=d["dropped_iterations"],
        thresholds=tuple(
            ThresholdOutcome(t["metric"], t["expression"], t["ok"]) for t in d["thresholds"]
        ),
        cache=None
        if cache is None
        else CacheFigures(
            hit_ratio=_opt_float(cache["hit_ratio"]),
            hits=cache["hits"],
            misses=cache["misses"],
            db_searches=cache["db_searches"],
            coalesced=cache["coalesced"],
        ),
        database=None
        if db is None
        else DatabaseFigures(
            calls=db["calls"],
            total_exec_ms=float(db["total_exec_ms"]),
            mean_exec_ms=_opt_float(db["mean_exec_ms"]),
            max_connections=db["max_connections"],
        ),
        resources=Resources(
            samples=tuple(
                ResourceSample(
                    t=float(s["t"]),
                    pid=s["pid"],
                    role=s["role"],
                    rss_mb=float(s["rss_mb"]),
                    cpu_percent=float(s["cpu_percent"]),
                    connections=s["connections"],
                )
                for s in d["resources"]["samples"]
            ),
            peak_rss_mb=_opt_float(d["resources"]["peak_rss_mb"]),
        ),
        timeseries=tuple(
            TimePoint(
                t=float(p["t"]),
                rps=float(p["rps"]),
                p50_ms=float(p["p50_ms"]),
                p95_ms=float(p["p95_ms"]),
                p99_ms=float(p["p99_ms"]),
                errors=p["errors"],
            )
            for p in d["timeseries"]
        ),
        memory=None
        if memory is None
        else MemoryGrowth(
            rss_slope_mb_per_10min=float(memory["rss_slope_mb_per_10min"]),
            ci_low=float(memory["ci_low"]),
            ci_high=float(memory["ci_high"]),
            leaking=memory["leaking"],
        ),
    )


def _build(data: dict[str, Any]) -> RunResults:
    run = data["run"]
    machine = run["machine"]
    corpus = run["corpus"]
    benchmarks = data.get("benchmarks")
    return RunResults(
        schema_version=data["schema_version"],
        run=RunMeta(
            id=run["id"],
            created_at=run["created_at"],
            git_commit=run["git_commit"],
            git_ref=run["git_ref"],
            profile=run["profile"],
            machine=Machine(
                machine_class=machine["class"],
                cpus=machine["cpus"],
                memory_gb=float(machine["memory_gb"]),
                platform=machine["platform"],
                python=machine["python"],
            ),
            tools=Tools(k6=run["tools"]["k6"], vegeta=run["tools"]["vegeta"]),
            settings=dict(run["settings"]),
            corpus=None
            if corpus is None
            else Corpus(corpus["docs"], corpus["seed"], corpus["embedder"], corpus["hash"]),
            target=run["target"],
        ),
        scenarios=tuple(_build_scenario(s) for s in data["scenarios"]),
        benchmarks=None
        if benchmarks is None
        else tuple(
            BenchmarkFigure(
                b["name"], b["group"], float(b["median_s"]), float(b["iqr_s"]), b["rounds"]
            )
            for b in benchmarks
        ),
    )


def _latency_dict(s: LatencySummary | None) -> dict[str, float] | None:
    if s is None:
        return None
    return {
        "p50": s.p50,
        "p90": s.p90,
        "p95": s.p95,
        "p99": s.p99,
        "p999": s.p999,
        "max": s.maximum,
        "min": s.minimum,
        "mean": s.mean,
    }


def _scenario_dict(s: ScenarioResult) -> dict[str, Any]:
    return {
        "name": s.name,
        "tool": s.tool,
        "label": s.label,
        "started_at": s.started_at,
        "duration_s": s.duration_s,
        "requests": s.requests,
        "throughput_rps": s.throughput_rps,
        "error_rate": s.error_rate,
        "latency_ms": _latency_dict(s.latency_ms),
        "ttfe_ms": _latency_dict(s.ttfe_ms),
        "dropped_iterations": s.dropped_iterations,
        "thresholds": [
            {"metric": t.metric, "expression": t.expression, "ok": t.ok} for t in s.thresholds
        ],
        "cache": None
        if s.cache is None
        else {
            "hit_ratio": s.cache.hit_ratio,
            "hits": s.cache.hits,
            "misses": s.cache.misses,
            "db_searches": s.cache.db_searches,
            "coalesced": s.cache.coalesced,
        },
        "database": None
        if s.database is None
        else {
            "calls": s.database.calls,
            "total_exec_ms": s.database.total_exec_ms,
            "mean_exec_ms": s.database.mean_exec_ms,
            "max_connections": s.database.max_connections,
        },
        "resources": {
            "samples": [
                {
                    "t": r.t,
                    "pid": r.pid,
                    "role": r.role,
                    "rss_mb": r.rss_mb,
                    "cpu_percent": r.cpu_percent,
                    "connections": r.connections,
                }
                for r in s.resources.samples
            ],
            "peak_rss_mb": s.resources.peak_rss_mb,
        },
        "timeseries": [
            {
                "t": p.t,
                "rps": p.rps,
                "p50_ms": p.p50_ms,
                "p95_ms": p.p95_ms,
                "p99_ms": p.p99_ms,
                "errors": p.errors,
            }
            for p in s.timeseries
        ],
        "memory": None
        if s.memory is None
        else {
            "rss_slope_mb_per_10min": s.memory.rss_slope_mb_per_10min,
            "ci_low": s.memory.ci_low,
            "ci_high": s.memory.ci_high,
            "leaking": s.memory.leaking,
        },
    }


def _unbuild(r: RunResults) -> dict[str, Any]:
    m = r.run
    return {
        "schema_version": r.schema_version,
        "run": {
            "id": m.id,
            "created_at": m.created_at,
            "git_commit": m.git_commit,
            "git_ref": m.git_ref,
            "profile": m.profile,
            "machine": {
                "class": m.machine.machine_class,
                "cpus": m.machine.cpus,
                "memory_gb": m.machine.memory_gb,
                "platform": m.machine.platform,
                "python": m.machine.python,
            },
            "tools": {"k6": m.tools.k6, "vegeta": m.tools.vegeta},
            "settings": dict(m.settings),
            "corpus": None
            if m.corpus is None
            else {
                "docs": m.corpus.docs,
                "seed": m.corpus.seed,
                "embedder": m.corpus.embedder,
                "hash": m.corpus.hash,
            },
            "target": m.target,
        },
        "scenarios": [_scenario_dict(s) for s in r.scenarios],
        "benchmarks": None
        if r.benchmarks is None
        else [
            {
                "name": b.name,
                "group": b.group,
                "median_s": b.median_s,
                "iqr_s": b.iqr_s,
                "rounds": b.rounds,
            }
            for b in r.benchmarks
        ],
    }
