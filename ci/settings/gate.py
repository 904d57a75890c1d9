"""``perf.toml [gate]``: the PR gate's rule (:class:`GateRule`) and design (:class:`GateDesign`).

The rule is the one typed object that says how a pull request is judged: the primary
metrics with their direction, mode and fail threshold, the error budget, the looks and the
report-only thresholds. It is parsed here once, stored as it is in ``verdict.json``, and
read back unchanged by ``perfci gate --rejudge`` and ``perfci comment``
(:func:`ci.judge.gate_decision.judge`). The design says how the windows are measured.

Parsed strictly, like the rest of perf.toml: an unknown key is a :class:`ConfigError`
naming it, and a rule that cannot reach its own significance level is refused when the
file is read, not after ten minutes of measuring. What each key means is in the
repository's ``perf.toml`` beside the key.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import msgspec

from ci.errors import ConfigError

Direction = Literal["lower", "higher"]
Mode = Literal["ratio", "absolute"]
#: The check's conclusion for a verdict that is neither a clean pass nor a fail.
Policy = Literal["neutral", "failure"]

#: Figures a duet window gives per side (``ci.judge.window_metrics`` reads them).
DUET_METRICS: tuple[str, ...] = (
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "cpu_ms_per_request",
    "error_rate",
    "slow_share",
    "slow_lead",
    "rss_kb_per_1k_requests",
    "service_cpu_ms_per_request",
    "postgres_cpu_ms_per_request",
    "valkey_cpu_ms_per_request",
    "valkey_calls_per_request",
    "relay_cpu_ms_per_request",  # [gate] db_rtt_ms: the emulated network, not the side's
    "rss_peak_mb",
    "stream_ttfe_p50",
    "stream_ttfe_p95",
    "stream_last_p50",
    "stream_last_p95",
    "burst_latency_p50",
    "burst_latency_p90",
)
#: Duet metrics compared as differences (their base is often 0, or they can be negative).
ABSOLUTE_METRICS: tuple[str, ...] = (
    "error_rate",
    "slow_share",
    "slow_lead",
    "rss_kb_per_1k_requests",
    "valkey_calls_per_request",
)
#: The shortest gap between sequential bursts (``burst_gap_s``; 0: the sides burst at once):
#: each burst runs for 3/4 of it, and k6 refuses a scenario shorter than 1 s.
MIN_BURST_GAP_S = 1.5
#: The longest round trip to PostgreSQL the gate emulates (``db_rtt_ms``): a region's.
MAX_DB_RTT_MS = 50.0
#: The fewest micro-benchmark rounds (``micro_rounds``) that give an effect's sign a test at
#: all (the smallest one-sided p of n rounds is 2**-n; ``ci.judge.micro`` says when a FAIL
#: is out of reach).
MIN_MICRO_ROUNDS = 4
#: The shape scenarios the gate runs once per side, for the SLA and the report.
SHAPE_SCENARIOS: tuple[str, ...] = ("ramp", "spike", "sse", "connections")


class GateMetric(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One primary metric: ``fail_threshold`` relative (0.05 = 5 %) in ratio mode, absolute
    (0.001 = 0.1 percentage point) in absolute mode."""

    name: str
    direction: Direction
    fail_threshold: float
    mode: Mode = "ratio"

    def __post_init__(self) -> None:
        where = f"gate.metrics[{self.name}]"
        if self.name not in DUET_METRICS:
            raise ConfigError(f"{where}.name: not a duet metric (known: {', '.join(DUET_METRICS)})")
        if not (math.isfinite(self.fail_threshold) and self.fail_threshold > 0):
            raise ConfigError(f"{where}.fail_threshold = {self.fail_threshold!r}: must be > 0")
        if self.mode == "ratio" and not self.fail_threshold < 1:
            raise ConfigError(f"{where}.fail_threshold = {self.fail_threshold!r}: must be < 1")

    @property
    def margin(self) -> float:
        """The threshold on the effect scale (log ratio or difference)."""
        return math.log1p(self.fail_threshold) if self.mode == "ratio" else self.fail_threshold


DEFAULT_GATE_METRICS: tuple[GateMetric, ...] = (
    GateMetric("cpu_ms_per_request", "lower", 0.05),
    GateMetric("latency_p50", "lower", 0.10),
    GateMetric("latency_p90", "lower", 0.10),
    GateMetric("error_rate", "lower", 0.001, "absolute"),
    GateMetric("slow_lead", "lower", 0.15, "absolute"),
    GateMetric("rss_kb_per_1k_requests", "lower", 5000.0, "absolute"),
    GateMetric("stream_last_p50", "lower", 0.10),
    GateMetric("burst_latency_p50", "lower", 0.20),
    GateMetric("valkey_calls_per_request", "lower", 0.5, "absolute"),
)


class GateRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a pull request is judged (:mod:`ci.judge.gate` states the rule)."""

    alpha: float = 0.01  # false FAILs per pull request, over every metric and look
    pass_alpha: float = 0.05  # chance of a PASS when a metric sits exactly at its threshold
    looks: tuple[int, ...] = (12, 20)  # measured windows at which the rule is applied
    metrics: tuple[GateMetric, ...] = DEFAULT_GATE_METRICS
    min_tail_samples: int = 60  # a gated percentile needs this many samples above it
    tail_prior: float = 10.0  # slow_lead counts this many slow searches more on each side
    report_threshold: float = 0.05  # a report-only metric "changed" beyond this...
    report_alpha: float = 0.01  # ...with a two-sided signed-rank p below this
    inconclusive: Policy = "neutral"  # the check's conclusion when the rule cannot decide
    harness_changed: Policy = "neutral"  # ...of a pass of a PR that changes the harness
    recall_drop: float = 0.015  # a FAIL when recall@10 falls by more (ci/judge/quality.py)
    short_results_rise: float = 0.01  # ...or the share of answers short of k rises by more
    recall_build_sd: float = 0.015  # SD of recall@10 between two HNSW builds of the same code
    micro_threshold: float = 0.25  # a FAIL when a micro-benchmark case is this much slower

    def __post_init__(self) -> None:
        for key in ("alpha", "pass_alpha", "report_alpha"):
            value = getattr(self, key)
            if not 0 < value < 0.5:
                raise ConfigError(f"gate.{key} = {value!r}: must lie in (0, 0.5)")
        looks = self.looks
        if not looks or any(b <= a for a, b in itertools.pairwise(looks)):
            raise ConfigError(f"gate.looks = {list(looks)}: must be increasing window counts")
        if looks[0] < 2:
            raise ConfigError(f"gate.looks = {list(looks)}: the first look needs 2+ windows")
        if not self.metrics:
            raise ConfigError("gate.metrics: must name at least one primary metric")
        names = self.primary_names
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"gate.metrics: metric {name!r} is listed twice")
        _check_reachable(self.alpha, looks, len(self.metrics))
        if not (math.isfinite(self.report_threshold) and self.report_threshold > 0):
            raise ConfigError(f"gate.report_threshold = {self.report_threshold!r}: must be > 0")
        if self.min_tail_samples < 1:
            raise ConfigError(f"gate.min_tail_samples = {self.min_tail_samples}: must be >= 1")
        if not (math.isfinite(self.tail_prior) and 0 <= self.tail_prior <= 1000):
            raise ConfigError(f"gate.tail_prior = {self.tail_prior!r}: must lie in [0, 1000]")
        for key in ("recall_drop", "short_results_rise", "recall_build_sd"):
            value = getattr(self, key)
            if not 0 <= value < 1:
                raise ConfigError(f"gate.{key} = {value!r}: must lie in [0, 1)")
        if not (math.isfinite(self.micro_threshold) and 0 < self.micro_threshold <= 10):
            raise ConfigError(
                f"gate.micro_threshold = {self.micro_threshold!r}: must lie in (0, 10] (a "
                "relative change: 0.25 = 25 % slower per call)"
            )

    @property
    def primary_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def report_only_names(self) -> tuple[str, ...]:
        return tuple(n for n in DUET_METRICS if n not in self.primary_names)


def _check_reachable(alpha: float, looks: tuple[int, ...], metrics: int) -> None:
    """Refuse a rule whose first look cannot reach its own significance level: with n
    pairs the smallest one-sided signed-rank p is 2**-n."""
    level = alpha / len(looks) / max(metrics, 1)
    n = looks[0]
    if 2.0**-n > level:
        need = math.ceil(-math.log2(level))
        raise ConfigError(
            f"gate.looks[0] = {n}: with {metrics} primary metrics and alpha = {alpha} "
            f"over {len(looks)} looks a FAIL needs p <= {level:.2g}, which "
            f"{n} pairs cannot reach (smallest p = {2.0**-n:.2g}); use {need} or more"
        )


class GateDesign(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the windows and shapes are measured."""

    rate: float = 60.0  # duet iterations per second (each: one search per side)
    window_s: float = 10.0  # one window
    warmup_windows: int = 4  # one ABBA block, discarded
    unique_fraction: float = 0.3  # share of queries no cache has seen
    write_fraction: float = 0.02  # share of iterations that also ingest + delete
    stream_fraction: float = 0.03  # share of iterations that also open a stream per side
    stream_k: int = 200  # results each duet stream asks for
    burst_vus: int = 50  # requests held in flight per side by each window's burst (0: none)
    burst_iterations: int = 3  # searches each burst VU sends
    burst_gap_s: float = 1.5  # > 0: the sides burst one after the other, this many seconds apart
    workers: int = 1  # service worker processes per side
    restart_every: int = 1  # restart both services after every this many measured blocks (0: never)
    pin_cpus: bool = False  # each side's service and Valkey on its own CPUs (4+ CPUs)
    db_rtt_ms: float = 2.0  # > 0: each side reaches PostgreSQL through a relay of this round trip
    tail_margin_ms: float = 25.0  # a search this much slower than the other side's is "slow"
    docs: int = 20_000  # corpus size
    embedder: str = "minilm"
    corpus_seed: int = 42
    shapes: tuple[str, ...] = SHAPE_SCENARIOS
    shape_time_scale: float = 0.02  # TIME_SCALE of the shape scenarios (0.02: ramp ~25 s)
    shape_vu_scale: float = 1.0
    setup_budget_s: float = 600.0  # worktrees, venvs, stack, seeding: beyond it the gate stops
    budget_s: float = 540.0  # from both services ready: no window starts past it...
    shapes_reserve_s: float = 120.0  # ...less this, kept for the shape scenarios after them
    quality_queries: int = 960  # the recall sample (half with a topic filter); 0: no check
    micro_rounds: int = 12  # rounds of the micro-benchmarks (a fresh process per side); 0: none

    def __post_init__(self) -> None:
        positive = {
            "rate": self.rate,
            "window_s": self.window_s,
            "shape_time_scale": self.shape_time_scale,
            "shape_vu_scale": self.shape_vu_scale,
            "setup_budget_s": self.setup_budget_s,
            "budget_s": self.budget_s,
            "shapes_reserve_s": self.shapes_reserve_s,
        }
        for key, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"gate.{key} = {value!r}: must be > 0")
        for key in ("unique_fraction", "write_fraction", "stream_fraction"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"gate.{key} = {value!r}: must lie in [0, 1]")
        if self.warmup_windows < 0 or self.warmup_windows % 4:
            raise ConfigError(
                f"gate.warmup_windows = {self.warmup_windows}: must be a multiple of 4 (one "
                "ABBA block is 4 windows)"
            )
        if not 1 <= self.stream_k <= 1000:
            raise ConfigError(f"gate.stream_k = {self.stream_k}: must lie in [1, 1000]")
        if not (0 <= self.burst_vus <= 500 and 1 <= self.burst_iterations <= 100):
            raise ConfigError(
                f"gate.burst_vus = {self.burst_vus}, gate.burst_iterations = "
                f"{self.burst_iterations}: must lie in [0, 500] and [1, 100]"
            )
        self._check_burst_gap()
        if not 1 <= self.workers <= 16:
            raise ConfigError(f"gate.workers = {self.workers}: must lie in [1, 16]")
        if not 0 <= self.restart_every <= 9:
            raise ConfigError(
                f"gate.restart_every = {self.restart_every}: must lie in [0, 9] (blocks of 4 "
                "windows; 0: the services run through every window)"
            )
        if not (math.isfinite(self.db_rtt_ms) and 0 <= self.db_rtt_ms <= MAX_DB_RTT_MS):
            raise ConfigError(
                f"gate.db_rtt_ms = {self.db_rtt_ms!r}: must lie in [0, {MAX_DB_RTT_MS:g}] (ms; "
                "0: PostgreSQL reached directly on loopback)"
            )
        if not (math.isfinite(self.tail_margin_ms) and 1 <= self.tail_margin_ms <= 1000):
            raise ConfigError(
                f"gate.tail_margin_ms = {self.tail_margin_ms!r}: must lie in [1, 1000] (ms)"
            )
        if self.docs < 1:
            raise ConfigError(f"gate.docs = {self.docs}: must be >= 1")
        if self.quality_queries != 0 and not 200 <= self.quality_queries <= 5000:
            raise ConfigError(
                f"gate.quality_queries = {self.quality_queries}: must be 0 (no recall check) "
                "or lie in [200, 5000]"
            )
        if not (self.micro_rounds == 0 or MIN_MICRO_ROUNDS <= self.micro_rounds <= 100):
            raise ConfigError(
                f"gate.micro_rounds = {self.micro_rounds}: must be 0 (no micro-benchmarks) or "
                f"lie in [{MIN_MICRO_ROUNDS}, 100]"
            )
        if self.embedder not in ("hash", "minilm"):
            raise ConfigError(f"gate.embedder = {self.embedder!r}: must be 'hash' or 'minilm'")
        unknown = [s for s in self.shapes if s not in SHAPE_SCENARIOS]
        if unknown:
            raise ConfigError(
                f"gate.shapes: {unknown[0]!r} is not a shape scenario "
                f"(known: {', '.join(SHAPE_SCENARIOS)})"
            )

    def _check_burst_gap(self) -> None:
        """Sequential bursts run after the arrivals, one gap apart: a window then lasts
        ``window_s + 2 * burst_gap_s``, at most twice as long as without them."""
        gap = self.burst_gap_s
        if gap == 0:
            return
        if not (math.isfinite(gap) and gap >= MIN_BURST_GAP_S):
            raise ConfigError(
                f"gate.burst_gap_s = {gap!r}: must be 0 (both sides burst at once) or at least "
                f"{MIN_BURST_GAP_S:g} s (each burst gets 3/4 of it to run, a quarter to finish)"
            )
        if self.burst_vus == 0:
            raise ConfigError(
                f"gate.burst_gap_s = {gap!r} spaces bursts, but gate.burst_vus = 0 sends none"
            )
        if 2 * gap > self.window_s:
            raise ConfigError(
                f"gate.burst_gap_s = {gap!r}: the two bursts, one gap each, take "
                f"2 x {gap:g} = {2 * gap:g} s, more than gate.window_s = {self.window_s:g} s "
                f"(use at most {self.window_s / 2:g} s, or a longer window)"
            )


@dataclass(frozen=True, slots=True)
class GateConfig:
    """``[gate]``: the rule and the design (one flat table in perf.toml)."""

    rule: GateRule = field(default_factory=GateRule)
    design: GateDesign = field(default_factory=GateDesign)


# -- parsing ---------------------------------------------------------------------------

_RULE_KEYS = tuple(GateRule.__struct_fields__)
_DESIGN_KEYS = tuple(GateDesign.__struct_fields__)
_KEYS = _RULE_KEYS + _DESIGN_KEYS
_T = TypeVar("_T", GateRule, GateDesign)
_METRIC_KEYS = tuple(GateMetric.__struct_fields__)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _build(kind: type[_T], values: Mapping[str, object]) -> _T:
    """``values`` as ``kind``, checked by type (an integer is accepted as a float)."""
    try:
        return msgspec.convert(values, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[gate]: {exc}") from exc


def parse_gate(data: Mapping[str, object]) -> GateConfig:
    """Build a :class:`GateConfig` from the ``[gate]`` table; keys left out keep defaults."""
    for key in data:
        if key not in _KEYS:
            raise ConfigError(f"unknown key gate.{key} (known: {', '.join(_KEYS)})")
    rule = {k: v for k, v in data.items() if k in _RULE_KEYS}
    if "metrics" in rule:
        rule["metrics"] = _metrics(rule["metrics"])
    design = {k: v for k, v in data.items() if k in _DESIGN_KEYS}
    return GateConfig(_build(GateRule, rule), _build(GateDesign, design))


def _metrics(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"gate.metrics = {_short(value)}: must be a non-empty array of tables")
    out = []
    for i, item in enumerate(value):
        where = f"gate.metrics[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} = {_short(item)}: must be a table")
        for key in item:
            if key not in _METRIC_KEYS:
                raise ConfigError(f"unknown key {where}.{key} (known: {', '.join(_METRIC_KEYS)})")
        if "fail_threshold" not in item:
            raise ConfigError(f"{where}.fail_threshold is missing")
        name = item.get("name")
        default_mode = "absolute" if name in ABSOLUTE_METRICS else "ratio"
        out.append({"direction": "lower", "mode": default_mode, **item})
    return out
