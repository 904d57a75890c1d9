"""The versioned results model: the boundary between measuring and judging.

A ``results.json`` file describes one run of the load-test scenarios, and everything its
``report.html`` shows (schema version 2 adds the run's :class:`Diagnostics`). The classes
are frozen msgspec Structs; their JSON form is derived from the fields (three fields carry
another name in JSON: ``Machine.machine_class`` is ``class``, ``LatencySummary.maximum`` and
``minimum`` are ``max`` and ``min``). Reading and writing files is :mod:`ci.results.codec`.

=======  ===================================================================
version  what changed
=======  ===================================================================
1        the first format
2        ``diagnostics`` (profiles, allocation growth, query plan, top statements);
         a version 1 file reads with ``diagnostics = None``
3        ``latency_histogram`` per scenario (:class:`LatencyHistogram`, for the
         report's histogram); a version 1 or 2 file reads with ``None``
=======  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ci.errors import ResultsError
from ci.results.validate import validate_document

SCHEMA_VERSION = 3

SettingValue = str | int | float | bool | None


class Machine(msgspec.Struct, frozen=True):
    machine_class: str = msgspec.field(name="class")
    cpus: int
    memory_gb: float
    platform: str
    python: str


class Tools(msgspec.Struct, frozen=True):
    k6: str | None
    vegeta: str | None


class Corpus(msgspec.Struct, frozen=True):
    docs: int
    seed: int
    embedder: str
    hash: str


class RunMeta(msgspec.Struct, frozen=True):
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


class LatencySummary(msgspec.Struct, frozen=True):
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    maximum: float = msgspec.field(name="max")
    minimum: float = msgspec.field(name="min")
    mean: float


class ThresholdOutcome(msgspec.Struct, frozen=True):
    metric: str
    expression: str
    ok: bool


class CacheFigures(msgspec.Struct, frozen=True):
    hit_ratio: float | None
    hits: int
    misses: int
    db_searches: int
    coalesced: int


class DatabaseFigures(msgspec.Struct, frozen=True):
    calls: int
    total_exec_ms: float
    mean_exec_ms: float | None
    max_connections: int | None


class ResourceSample(msgspec.Struct, frozen=True):
    t: float
    pid: int
    role: str
    rss_mb: float
    cpu_percent: float
    connections: int


class Resources(msgspec.Struct, frozen=True):
    samples: tuple[ResourceSample, ...]
    peak_rss_mb: float | None


class TimePoint(msgspec.Struct, frozen=True):
    t: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


class MemoryGrowth(msgspec.Struct, frozen=True):
    """Memory-growth estimate produced by the memory analysis (not computed here)."""

    rss_slope_mb_per_10min: float
    ci_low: float
    ci_high: float
    leaking: bool


class LatencyHistogram(msgspec.Struct, frozen=True):
    """Every request's latency counted in log-spaced bins (ms): ``counts[i]`` requests took
    ``edges_ms[i] <= latency < edges_ms[i + 1]`` (the last bin includes its upper edge)."""

    edges_ms: tuple[float, ...]
    counts: tuple[int, ...]


class ScenarioResult(msgspec.Struct, frozen=True):
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
    latency_histogram: LatencyHistogram | None = None  # schema version 3


class BenchmarkFigure(msgspec.Struct, frozen=True):
    name: str
    group: str | None
    median_s: float
    iqr_s: float
    rounds: int


# -- diagnostics (schema version 2) -----------------------------------------------------------


class ProfileLink(msgspec.Struct, frozen=True):
    """A file written beside ``results.json`` (a flame graph, the query plan, ...)."""

    label: str
    path: str  # relative to the run folder


class AllocationSite(msgspec.Struct, frozen=True):
    """One tracemalloc site, growth from the end of warm-up to the end of the run."""

    file: str
    line: int
    size_kb: float
    size_diff_kb: float
    count_diff: int
    count: int | None = None


class Statement(msgspec.Struct, frozen=True):
    """One statement of pg_stat_statements over a scenario (the difference of two snapshots)."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


class ScenarioStatements(msgspec.Struct, frozen=True):
    scenario: str
    top: tuple[Statement, ...]


class Diagnostics(msgspec.Struct, frozen=True):
    """What a run's report shows beside the figures; diagnosis never fails a run, so what
    went wrong while diagnosing is kept in ``problems``."""

    profiles: tuple[ProfileLink, ...] = ()
    allocation_sites: tuple[AllocationSite, ...] = ()
    allocation_pid: int | None = None
    explain: str | None = None  # EXPLAIN (ANALYZE, BUFFERS) of the service's search
    statements: tuple[ScenarioStatements, ...] = ()  # top statements per scenario
    problems: tuple[str, ...] = ()


class RunResults(msgspec.Struct, frozen=True):
    run: RunMeta
    scenarios: tuple[ScenarioResult, ...]
    benchmarks: tuple[BenchmarkFigure, ...] | None = None
    schema_version: int = SCHEMA_VERSION
    diagnostics: Diagnostics | None = None

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
        validate_document(data, source)
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:  # what the schema cannot bound (int64 range)
            raise ResultsError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: ``schema_version`` first; version 1 has no ``diagnostics``,
        versions 1 and 2 no ``latency_histogram``."""
        data = _json_arrays(msgspec.to_builtins(self))
        assert isinstance(data, dict)
        out = {"schema_version": data.pop("schema_version"), **data}
        if self.schema_version < 2 and self.diagnostics is None:
            del out["diagnostics"]
        if self.schema_version < 3:
            for scenario in out["scenarios"]:
                if scenario.get("latency_histogram") is None:
                    scenario.pop("latency_histogram", None)
        return out


def _json_arrays(value: Any) -> Any:
    """msgspec's builtins keep tuples; a JSON document (and its schema) has lists."""
    if isinstance(value, dict):
        return {k: _json_arrays(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_json_arrays(v) for v in value]
    return value
