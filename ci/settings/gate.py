"""``perf.toml [gate]``: the PR gate's design (the decision rule of :mod:`ci.judge.gate`).

Parsed strictly, like the rest of perf.toml: an unknown key is a :class:`ConfigError`
naming it, and a design that cannot reach its own significance level is refused here, when
the file is read, not after ten minutes of measuring (:func:`check_reachable`).

What each key means is in the repository's ``perf.toml`` beside the key; the numbers were
chosen by measuring the A/A noise of each metric on a 2-vCPU machine (README, "How the gate
decides").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ci.errors import ConfigError

Direction = Literal["lower", "higher"]
Mode = Literal["ratio", "absolute"]

#: Figures a duet window gives per side (``ci.judge.duet`` reads them).
DUET_METRICS: tuple[str, ...] = (
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "cpu_ms_per_request",
    "error_rate",
)
#: The shape scenarios the gate runs once per side, for the SLA and the report.
SHAPE_SCENARIOS: tuple[str, ...] = ("ramp", "spike", "sse", "connections")


@dataclass(frozen=True, slots=True)
class GateMetric:
    """One primary metric: ``fail_threshold`` relative (ratio) or absolute (absolute mode)."""

    name: str
    direction: Direction
    fail_threshold: float
    mode: Mode = "ratio"


DEFAULT_GATE_METRICS: tuple[GateMetric, ...] = (
    GateMetric("cpu_ms_per_request", "lower", 0.05),
    GateMetric("latency_p50", "lower", 0.10),
    GateMetric("latency_p90", "lower", 0.10),
    GateMetric("error_rate", "lower", 0.001, "absolute"),
)


@dataclass(frozen=True, slots=True)
class GateConfig:
    """The gate: error budget, sequential looks, primary metrics and the duet windows."""

    alpha: float = 0.01  # false FAILs per pull request, over every metric and look
    pass_alpha: float = 0.05  # chance of a PASS when a metric sits exactly at its threshold
    looks: tuple[int, ...] = (12, 24, 36)  # measured windows at which the rule is applied
    metrics: tuple[GateMetric, ...] = DEFAULT_GATE_METRICS
    min_tail_samples: int = 100  # a gated percentile needs this many samples above it
    report_threshold: float = 0.05  # a report-only metric "changed" beyond this...
    report_alpha: float = 0.01  # ...with a two-sided signed-rank p below this
    rate: float = 120.0  # duet iterations per second (each: one search per side)
    window_s: float = 10.0  # one window
    warmup_windows: int = 4  # one ABBA block, discarded
    unique_fraction: float = 0.3  # share of queries no cache has seen
    write_fraction: float = 0.02  # share of iterations that also ingest + delete
    workers: int = 1  # service worker processes per side
    docs: int = 20_000  # corpus size
    embedder: str = "minilm"
    corpus_seed: int = 42
    shapes: tuple[str, ...] = SHAPE_SCENARIOS
    shape_time_scale: float = 0.02  # TIME_SCALE of the shape scenarios (0.02: ramp ~25 s)
    shape_vu_scale: float = 1.0
    budget_s: float = 540.0  # wall-time budget of `perfci gate`: no window starts past it...
    shapes_reserve_s: float = 120.0  # ...less this, kept for the shape scenarios after them

    def __post_init__(self) -> None:
        _check_gate(self)

    @property
    def primary_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def report_only_names(self) -> tuple[str, ...]:
        return tuple(n for n in DUET_METRICS if n not in self.primary_names)


def check_reachable(alpha: float, looks: tuple[int, ...], metrics: int) -> None:
    """Refuse a design whose first look cannot reach its own significance level: with n
    pairs the smallest one-sided signed-rank p is 2**-n (``GateRule.check_reachable``)."""
    level = alpha / len(looks) / max(metrics, 1)
    n = looks[0]
    if 2.0**-n > level:
        need = math.ceil(-math.log2(level))
        raise ConfigError(
            f"gate.looks[0] = {n}: with {metrics} primary metrics and alpha = {alpha} "
            f"over {len(looks)} looks a FAIL needs p <= {level:.2g}, which "
            f"{n} pairs cannot reach (smallest p = {2.0**-n:.2g}); use {need} or more"
        )


def _check_gate(g: GateConfig) -> None:
    for key in ("alpha", "pass_alpha", "report_alpha"):
        value = getattr(g, key)
        if not 0 < value < 0.5:
            raise ConfigError(f"gate.{key} = {value!r}: must lie in (0, 0.5)")
    if not g.looks or any(b <= a for a, b in zip(g.looks, g.looks[1:], strict=False)):
        raise ConfigError(f"gate.looks = {list(g.looks)}: must be increasing window counts")
    if g.looks[0] < 2:
        raise ConfigError(f"gate.looks = {list(g.looks)}: the first look needs 2+ windows")
    if not g.metrics:
        raise ConfigError("gate.metrics: must name at least one primary metric")
    names = [m.name for m in g.metrics]
    for m in g.metrics:
        where = f"gate.metrics[{m.name}]"
        if names.count(m.name) > 1:
            raise ConfigError(f"gate.metrics: metric {m.name!r} is listed twice")
        if not (math.isfinite(m.fail_threshold) and m.fail_threshold > 0):
            raise ConfigError(f"{where}.fail_threshold = {m.fail_threshold!r}: must be > 0")
        if m.mode == "ratio" and not m.fail_threshold < 1:
            raise ConfigError(f"{where}.fail_threshold = {m.fail_threshold!r}: must be < 1")
    check_reachable(g.alpha, g.looks, len(g.metrics))
    positive = {
        "rate": g.rate,
        "window_s": g.window_s,
        "report_threshold": g.report_threshold,
        "shape_time_scale": g.shape_time_scale,
        "shape_vu_scale": g.shape_vu_scale,
        "budget_s": g.budget_s,
        "shapes_reserve_s": g.shapes_reserve_s,
    }
    for key, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"gate.{key} = {value!r}: must be > 0")
    for key in ("unique_fraction", "write_fraction"):
        value = getattr(g, key)
        if not 0 <= value <= 1:
            raise ConfigError(f"gate.{key} = {value!r}: must lie in [0, 1]")
    if g.warmup_windows < 0 or g.warmup_windows % 4:
        raise ConfigError(
            f"gate.warmup_windows = {g.warmup_windows}: must be a multiple of 4 (one ABBA "
            "block is 4 windows)"
        )
    if g.min_tail_samples < 1:
        raise ConfigError(f"gate.min_tail_samples = {g.min_tail_samples}: must be >= 1")
    if not 1 <= g.workers <= 16:
        raise ConfigError(f"gate.workers = {g.workers}: must lie in [1, 16]")
    if g.docs < 1:
        raise ConfigError(f"gate.docs = {g.docs}: must be >= 1")
    if g.embedder not in ("hash", "minilm"):
        raise ConfigError(f"gate.embedder = {g.embedder!r}: must be 'hash' or 'minilm'")
    unknown = [s for s in g.shapes if s not in SHAPE_SCENARIOS]
    if unknown:
        raise ConfigError(
            f"gate.shapes: {unknown[0]!r} is not a shape scenario "
            f"(known: {', '.join(SHAPE_SCENARIOS)})"
        )


# -- parsing ---------------------------------------------------------------------------

_KEYS = (
    "alpha",
    "pass_alpha",
    "looks",
    "metrics",
    "min_tail_samples",
    "report_threshold",
    "report_alpha",
    "rate",
    "window_s",
    "warmup_windows",
    "unique_fraction",
    "write_fraction",
    "workers",
    "docs",
    "embedder",
    "corpus_seed",
    "shapes",
    "shape_time_scale",
    "shape_vu_scale",
    "budget_s",
    "shapes_reserve_s",
)
_FLOAT_KEYS = (
    "alpha",
    "pass_alpha",
    "report_threshold",
    "report_alpha",
    "rate",
    "window_s",
    "unique_fraction",
    "write_fraction",
    "shape_time_scale",
    "shape_vu_scale",
    "budget_s",
    "shapes_reserve_s",
)
_INT_KEYS = ("min_tail_samples", "warmup_windows", "workers", "docs", "corpus_seed")
_METRIC_KEYS = ("name", "direction", "fail_threshold", "mode")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} = {_short(value)}: must be a number")
    if not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: must be finite")
    return float(value)


def _integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} = {_short(value)}: must be an integer")
    return value


def parse_gate(data: Mapping[str, object]) -> GateConfig:
    """Build a :class:`GateConfig` from the ``[gate]`` table; keys left out keep defaults."""
    for key in data:
        if key not in _KEYS:
            raise ConfigError(f"unknown key gate.{key} (known: {', '.join(_KEYS)})")
    values: dict[str, object] = {}
    for key in _FLOAT_KEYS:
        if key in data:
            values[key] = _number(f"gate.{key}", data[key])
    for key in _INT_KEYS:
        if key in data:
            values[key] = _integer(f"gate.{key}", data[key])
    if "embedder" in data:
        if not isinstance(data["embedder"], str):
            raise ConfigError(f"gate.embedder = {_short(data['embedder'])}: must be a string")
        values["embedder"] = data["embedder"]
    if "looks" in data:
        looks = data["looks"]
        if not isinstance(looks, list) or not looks:
            raise ConfigError(f"gate.looks = {_short(looks)}: must be a non-empty array")
        values["looks"] = tuple(_integer(f"gate.looks[{i}]", v) for i, v in enumerate(looks))
    if "shapes" in data:
        shapes = data["shapes"]
        if not isinstance(shapes, list) or not all(isinstance(s, str) for s in shapes):
            raise ConfigError(f"gate.shapes = {_short(shapes)}: must be an array of names")
        values["shapes"] = tuple(shapes)
    if "metrics" in data:
        values["metrics"] = _parse_metrics(data["metrics"])
    return GateConfig(**values)  # type: ignore[arg-type]  # keys and types checked above


def _parse_metrics(value: object) -> tuple[GateMetric, ...]:
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
        name = item.get("name")
        if name not in DUET_METRICS:
            raise ConfigError(
                f"{where}.name = {_short(name)}: not a duet metric "
                f"(known: {', '.join(DUET_METRICS)})"
            )
        direction = item.get("direction", "lower")
        if direction not in ("lower", "higher"):
            raise ConfigError(f"{where}.direction = {_short(direction)}: 'lower' or 'higher'")
        mode = item.get("mode", "absolute" if name == "error_rate" else "ratio")
        if mode not in ("ratio", "absolute"):
            raise ConfigError(f"{where}.mode = {_short(mode)}: must be 'ratio' or 'absolute'")
        if "fail_threshold" not in item:
            raise ConfigError(f"{where}.fail_threshold is missing")
        threshold = _number(f"{where}.fail_threshold", item["fail_threshold"])
        assert isinstance(name, str)
        out.append(GateMetric(name, direction, threshold, mode))
    return tuple(out)
