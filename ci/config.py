"""The judging side of ``perf.toml``: ``[compare]`` and ``[sla]``.

Other top-level tables (``run``, ``stack``, ``profiles``, ``memory``) belong to other
modules and are accepted unread here; any other top-level table is an error, as is any
unknown key inside ``[compare]`` or ``[sla]``. Messages name the key and the bad value.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ci.errors import ConfigError

Direction = Literal["lower", "higher"]
Mode = Literal["ratio", "absolute"]

#: Metric names that ``ci.compare`` knows how to read from a scenario.
KNOWN_METRICS: tuple[str, ...] = (
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "throughput_rps",
    "error_rate",
    "ttfe_p50",
    "ttfe_p95",
    "ttfe_p99",
    "cache_hit_ratio",
    "peak_rss_mb",
    "cpu_ms_per_request",
)

OWN_TABLES = ("compare", "sla")
OTHER_TABLES = ("run", "stack", "profiles", "memory")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One compared metric.

    ``mode = "ratio"`` compares candidate/base; ``"absolute"`` compares candidate - base
    (for figures such as an error rate whose base is often 0). Thresholds left as ``None``
    fall back to the ``[compare]`` defaults, which are relative (0.05 = 5 %).
    """

    name: str
    direction: Direction
    mode: Mode = "ratio"
    fail_threshold: float | None = None
    warn_threshold: float | None = None


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("latency_p50", "lower"),
    MetricSpec("latency_p95", "lower"),
    MetricSpec("latency_p99", "lower"),
    MetricSpec("throughput_rps", "higher"),
    # Absolute: the base error rate is usually 0, so a ratio is undefined.
    MetricSpec("error_rate", "lower", "absolute", fail_threshold=0.001, warn_threshold=0.0005),
    MetricSpec("ttfe_p95", "lower"),
    MetricSpec("cache_hit_ratio", "higher", "absolute", fail_threshold=0.05, warn_threshold=0.02),
    MetricSpec("peak_rss_mb", "lower"),
    MetricSpec("cpu_ms_per_request", "lower"),
)


@dataclass(frozen=True, slots=True)
class CompareConfig:
    fail_threshold: float = 0.05
    warn_threshold: float = 0.02
    min_pairs: int = 5
    confidence: float = 0.95
    bootstrap_resamples: int = 10_000
    alpha: float = 0.05
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS

    def __post_init__(self) -> None:
        _check_compare(self)


@dataclass(frozen=True, slots=True)
class SlaConfig:
    p95_ms: float = 2000.0
    p99_ms: float = 5000.0
    error_rate: float = 0.001
    cache_hit_ratio: float = 0.70
    rss_slope_mb_per_10min: float = 5.0
    # The hit-ratio gate needs this many cache lookups in a scenario: a cache that starts
    # cold is still filling over a seconds-long scenario (the Zipf query log's expected
    # cold-start hit ratio is ~0.70 at 1,000 lookups and ~0.77 at 2,000).
    cache_hit_min_lookups: int = 2000

    def __post_init__(self) -> None:
        if self.cache_hit_min_lookups < 0:
            raise ConfigError(
                f"sla.cache_hit_min_lookups = {self.cache_hit_min_lookups!r}: must be >= 0"
            )
        for key in ("p95_ms", "p99_ms", "rss_slope_mb_per_10min"):
            value = getattr(self, key)
            if not value > 0:
                raise ConfigError(f"sla.{key} = {value!r}: must be > 0")
        for key in ("error_rate", "cache_hit_ratio"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"sla.{key} = {value!r}: must lie in [0, 1]")


@dataclass(frozen=True, slots=True)
class PerfConfig:
    compare: CompareConfig = field(default_factory=CompareConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)


def load_perf_config(path: str | os.PathLike[str] | None) -> PerfConfig:
    """Read ``perf.toml``; a missing file (or ``None``) gives the defaults."""
    if path is None:
        return PerfConfig()
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PerfConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return parse_perf_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def parse_perf_config(data: Mapping[str, object]) -> PerfConfig:
    """Build a :class:`PerfConfig` from an already parsed TOML document."""
    for key, value in data.items():
        if key not in OWN_TABLES + OTHER_TABLES:
            allowed = ", ".join(OWN_TABLES + OTHER_TABLES)
            raise ConfigError(f"unknown top-level key {key!r} (allowed tables: {allowed})")
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {_short(value)}: must be a table")
    compare = _parse_compare(_table(data, "compare"))
    sla = _parse_sla(_table(data, "sla"))
    return PerfConfig(compare=compare, sla=sla)


def _table(data: Mapping[str, object], key: str) -> dict[str, object]:
    value = data.get(key, {})
    assert isinstance(value, dict)  # checked by the caller
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(table: str, key: str, value: object) -> float:
    # TOML booleans are Python ints; refuse them explicitly.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{table}.{key} = {_short(value)}: must be a number")
    if not math.isfinite(value):
        raise ConfigError(f"{table}.{key} = {value!r}: must be finite")
    return float(value)


def _integer(table: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{table}.{key} = {_short(value)}: must be an integer")
    return value


def _unknown(table: str, data: Mapping[str, object], known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key {table}.{key} (known: {', '.join(known)})")


_COMPARE_KEYS = (
    "fail_threshold",
    "warn_threshold",
    "min_pairs",
    "confidence",
    "bootstrap_resamples",
    "alpha",
    "metrics",
)
_METRIC_KEYS = ("name", "direction", "mode", "fail_threshold", "warn_threshold")
_SLA_KEYS = ("p95_ms", "p99_ms", "error_rate", "cache_hit_ratio", "rss_slope_mb_per_10min")
_SLA_INT_KEYS = ("cache_hit_min_lookups",)


def _parse_compare(data: Mapping[str, object]) -> CompareConfig:
    _unknown("compare", data, _COMPARE_KEYS)
    defaults = CompareConfig()
    metrics = defaults.metrics
    if "metrics" in data:
        metrics = _parse_metrics(data["metrics"])
    return CompareConfig(
        fail_threshold=_number("compare", "fail_threshold", data.get("fail_threshold", 0.05)),
        warn_threshold=_number("compare", "warn_threshold", data.get("warn_threshold", 0.02)),
        min_pairs=_integer("compare", "min_pairs", data.get("min_pairs", defaults.min_pairs)),
        confidence=_number("compare", "confidence", data.get("confidence", defaults.confidence)),
        bootstrap_resamples=_integer(
            "compare",
            "bootstrap_resamples",
            data.get("bootstrap_resamples", defaults.bootstrap_resamples),
        ),
        alpha=_number("compare", "alpha", data.get("alpha", defaults.alpha)),
        metrics=metrics,
    )


def _parse_metrics(value: object) -> tuple[MetricSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"compare.metrics = {_short(value)}: must be a non-empty array of tables")
    specs: list[MetricSpec] = []
    for i, item in enumerate(value):
        where = f"compare.metrics[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} = {_short(item)}: must be a table")
        _unknown(where, item, _METRIC_KEYS)
        name = item.get("name")
        if name not in KNOWN_METRICS:
            raise ConfigError(
                f"{where}.name = {_short(name)}: unknown metric (known: {', '.join(KNOWN_METRICS)})"
            )
        direction = item.get("direction")
        if direction not in ("lower", "higher"):
            raise ConfigError(
                f"{where}.direction = {_short(direction)}: must be 'lower' or 'higher'"
            )
        mode = item.get("mode", "ratio")
        if mode not in ("ratio", "absolute"):
            raise ConfigError(f"{where}.mode = {_short(mode)}: must be 'ratio' or 'absolute'")
        fail = item.get("fail_threshold")
        warn = item.get("warn_threshold")
        fail_f = None if fail is None else _number(where, "fail_threshold", fail)
        warn_f = None if warn is None else _number(where, "warn_threshold", warn)
        assert isinstance(name, str)
        specs.append(MetricSpec(name, direction, mode, fail_f, warn_f))
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"compare.metrics: metric {name!r} is listed twice")
    return tuple(specs)


def _check_compare(c: CompareConfig) -> None:
    if not 0 < c.fail_threshold < 1:
        raise ConfigError(f"compare.fail_threshold = {c.fail_threshold!r}: must lie in (0, 1)")
    if not 0 < c.warn_threshold <= c.fail_threshold:
        raise ConfigError(
            f"compare.warn_threshold = {c.warn_threshold!r}: must lie in (0, fail_threshold = "
            f"{c.fail_threshold!r}]"
        )
    if not 0.5 < c.confidence < 1:
        raise ConfigError(f"compare.confidence = {c.confidence!r}: must lie in (0.5, 1)")
    if not 0 < c.alpha < 0.5:
        raise ConfigError(f"compare.alpha = {c.alpha!r}: must lie in (0, 0.5)")
    if not 100 <= c.bootstrap_resamples <= 1_000_000:
        raise ConfigError(
            f"compare.bootstrap_resamples = {c.bootstrap_resamples!r}: must lie in [100, 1000000]"
        )
    if c.min_pairs < 2:
        raise ConfigError(f"compare.min_pairs = {c.min_pairs!r}: must be >= 2")
    # With n pairs the smallest one-sided Wilcoxon p is 1/2**n: below that, "fail" could
    # never be reached and every real regression would pass as "warn".
    if 0.5**c.min_pairs >= c.alpha:
        raise ConfigError(
            f"compare.min_pairs = {c.min_pairs!r} makes a fail unreachable: with "
            f"{c.min_pairs} pairs the smallest one-sided Wilcoxon p is "
            f"{0.5**c.min_pairs:.3g} >= alpha {c.alpha!r}"
        )
    if not c.metrics:
        raise ConfigError("compare.metrics: must name at least one metric")
    for spec in c.metrics:
        fail = c.fail_threshold if spec.fail_threshold is None else spec.fail_threshold
        warn = c.warn_threshold if spec.warn_threshold is None else spec.warn_threshold
        where = f"compare.metrics[{spec.name}]"
        if not fail > 0:
            raise ConfigError(f"{where}.fail_threshold = {fail!r}: must be > 0")
        if spec.mode == "ratio" and not fail < 1:
            raise ConfigError(f"{where}.fail_threshold = {fail!r}: must be < 1 for a ratio")
        if not 0 < warn <= fail:
            raise ConfigError(
                f"{where}.warn_threshold = {warn!r}: must lie in (0, fail_threshold = {fail!r}]"
            )


def _parse_sla(data: Mapping[str, object]) -> SlaConfig:
    _unknown("sla", data, (*_SLA_KEYS, *_SLA_INT_KEYS))
    defaults = SlaConfig()
    values = {key: _number("sla", key, data.get(key, getattr(defaults, key))) for key in _SLA_KEYS}
    min_lookups = _integer(
        "sla",
        "cache_hit_min_lookups",
        data.get("cache_hit_min_lookups", defaults.cache_hit_min_lookups),
    )
    return SlaConfig(
        p95_ms=values["p95_ms"],
        p99_ms=values["p99_ms"],
        error_rate=values["error_rate"],
        cache_hit_ratio=values["cache_hit_ratio"],
        rss_slope_mb_per_10min=values["rss_slope_mb_per_10min"],
        cache_hit_min_lookups=min_lookups,
    )
