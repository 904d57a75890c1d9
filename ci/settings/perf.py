"""``perf.toml``: the one declaration of the SLA, and the settings of the gate and the history.

Parsing is strict: a top-level table other than ``[sla]``, ``[history]``
(:mod:`ci.settings.history`), ``[gate]`` (:mod:`ci.settings.gate`) and ``[capacity]``
(:mod:`ci.settings.capacity`), or an unknown key inside them, is a :class:`ConfigError`
that names it. Messages name the key and the bad value.

Where values come from:

=====================================  ==============================================
``load_perf_config(None)``             the repository's ``perf.toml`` (:data:`REPO_PERF_TOML`)
``load_perf_config(path)``, path read  that file; a key it leaves out takes the value of
                                       the repository's file (``[sla]``, ``[capacity]``) or
                                       its table's default (``[history]``, ``[gate]``)
``load_perf_config(path)``, missing    ``ConfigError`` naming the path
the repository's file misses an        ``ConfigError``: the SLA is declared there, once,
``[sla]`` key                          and nowhere else carries its numbers
=====================================  ==============================================

The SLA has no defaults in code: k6 thresholds (through :meth:`SlaConfig.k6_env`),
collect and judge all read it from here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci.errors import ConfigError
from ci.settings.capacity import CapacitySettings, parse_capacity
from ci.settings.gate import GateConfig, parse_gate
from ci.settings.history import HistoryConfig, parse_history

#: The repository's perf.toml: the default configuration, and the one place the SLA is declared.
REPO_PERF_TOML = Path(__file__).resolve().parents[2] / "perf.toml"

TABLES = ("sla", "history", "gate", "capacity")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaConfig:
    """The SLA: absolute limits on a run (and the PR gate's margin when both sides breach
    one), declared in ``perf.toml [sla]`` and nowhere else.

    No field has a default: the numbers live in the repository's ``perf.toml`` only.
    ``k6_env()`` hands them to the k6 scenarios as ``PERFCI_SLA_<FIELD>`` variables.
    """

    p95_ms: float  # latency p95 below this (ms)
    p99_ms: float  # latency p99 below this (ms)
    error_rate: float  # failed requests below this fraction
    ttfe_p95_ms: float  # SSE time to first event, p95, below this (ms)
    spike_error_rate: float  # a load spike may shed up to this fraction
    cache_hit_ratio: float  # hit ratio above this, where a cache is reported...
    # ...in scenarios with at least this many lookups: a cache that starts cold is still
    # filling over a seconds-long scenario (the Zipf query log's expected cold-start hit
    # ratio is ~0.70 at 1,000 lookups and ~0.77 at 2,000).
    cache_hit_min_lookups: int
    rss_slope_mb_per_10min: float  # RSS growth below this (MB per 10 minutes)
    # When base and candidate both breach a limit, the candidate fails only if it is worse
    # than the base by more than this, relative (:func:`ci.judge.sla.clearly_worse`).
    both_breach_margin: float

    def __post_init__(self) -> None:
        if self.cache_hit_min_lookups < 0:
            raise ConfigError(
                f"sla.cache_hit_min_lookups = {self.cache_hit_min_lookups!r}: must be >= 0"
            )
        if not 0 < self.both_breach_margin < 1:
            raise ConfigError(
                f"sla.both_breach_margin = {self.both_breach_margin!r}: must lie in (0, 1)"
            )
        for key in ("p95_ms", "p99_ms", "ttfe_p95_ms", "rss_slope_mb_per_10min"):
            value = getattr(self, key)
            if not value > 0:
                raise ConfigError(f"sla.{key} = {value!r}: must be > 0")
        for key in ("error_rate", "spike_error_rate", "cache_hit_ratio"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"sla.{key} = {value!r}: must lie in [0, 1]")

    def k6_env(self) -> dict[str, str]:
        """``PERFCI_SLA_<FIELD_UPPER>`` for every field, as the k6 scenarios read them."""
        return {
            f"PERFCI_SLA_{f.name.upper()}": _env_number(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }


SLA_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SlaConfig))


def _env_number(value: float) -> str:
    """The shortest text that reads back as ``value`` (2000.0 -> "2000", 0.001 -> "0.001")."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


@functools.cache
def repo_sla() -> SlaConfig:
    """The SLA of the repository's ``perf.toml`` (read once per process)."""
    return load_perf_config(REPO_PERF_TOML).sla


@functools.cache
def repo_capacity() -> CapacitySettings:
    """The ``[capacity]`` table of the repository's ``perf.toml`` (read once per process)."""
    return load_perf_config(REPO_PERF_TOML).capacity


@dataclass(frozen=True, slots=True)
class PerfConfig:
    # The default is the repository's perf.toml [sla]: the SLA's numbers live there only.
    sla: SlaConfig = field(default_factory=lambda: repo_sla())
    history: HistoryConfig = field(default_factory=HistoryConfig)  # [history] (ci.settings.history)
    gate: GateConfig = field(default_factory=GateConfig)  # [gate] (ci.settings.gate)
    capacity: CapacitySettings = field(default_factory=lambda: repo_capacity())  # as sla
    # [sla.machine.<class>]: limits of one machine class (PERFCI_MACHINE_CLASS), the rest as [sla]
    sla_machines: Mapping[str, SlaConfig] = field(default_factory=dict)

    def sla_for(self, machine_class: str) -> SlaConfig:
        """The SLA of a machine class: its ``[sla.machine.<class>]`` overrides, else ``[sla]``."""
        return self.sla_machines.get(machine_class, self.sla)


def load_perf_config(path: str | os.PathLike[str] | None = None) -> PerfConfig:
    """Read ``perf.toml``; ``None`` reads the repository's (see the module docstring)."""
    source = REPO_PERF_TOML if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        hint = "" if path is None else f" (leave out --config to use {REPO_PERF_TOML})"
        raise ConfigError(f"{source}: no such file{hint}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    is_repo = source.resolve() == REPO_PERF_TOML
    try:
        return parse_perf_config(
            data,
            sla_defaults=None if is_repo else repo_sla(),
            capacity_defaults=None if is_repo else repo_capacity(),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def parse_perf_config(
    data: Mapping[str, object],
    *,
    sla_defaults: SlaConfig | None = None,
    capacity_defaults: CapacitySettings | None = None,
) -> PerfConfig:
    """Build a :class:`PerfConfig` from an already parsed TOML document.

    ``[sla]`` keys the document leaves out come from ``sla_defaults``; without it every
    key is required (the repository's file declares them all). ``[capacity]`` keys it
    leaves out come from ``capacity_defaults``, else are unset.
    """
    for key, value in data.items():
        if key not in TABLES:
            raise ConfigError(
                f"unknown top-level key {key!r} (allowed tables: {', '.join(TABLES)})"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {_short(value)}: must be a table")
    sla_table = dict(_table(data, "sla"))
    machines = sla_table.pop("machine", {})
    sla = _parse_sla(sla_table, sla_defaults)
    if not isinstance(machines, dict) or not all(isinstance(v, dict) for v in machines.values()):
        raise ConfigError(f"sla.machine = {_short(machines)}: must hold one table per class")
    by_class = {
        name: _parse_sla(table, sla, where=f"sla.machine.{name}")
        for name, table in machines.items()
    }
    return PerfConfig(
        sla=sla,
        history=parse_history(_table(data, "history")),
        gate=parse_gate(_table(data, "gate")),
        capacity=parse_capacity(_table(data, "capacity"), capacity_defaults),
        sla_machines=by_class,
    )


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


_SLA_INT_KEYS = ("cache_hit_min_lookups",)


def _parse_sla(
    data: Mapping[str, object], defaults: SlaConfig | None, where: str = "sla"
) -> SlaConfig:
    _unknown(where, data, SLA_FIELDS)
    values: dict[str, float | int] = {}
    for key in SLA_FIELDS:
        if key in data:
            raw = data[key]
        elif defaults is not None:
            raw = getattr(defaults, key)
        else:
            raise ConfigError(
                f"sla.{key} is missing: [sla] must declare every SLA limit "
                f"({', '.join(SLA_FIELDS)})"
            )
        number = _integer if key in _SLA_INT_KEYS else _number
        values[key] = number(where, key, raw)
    return SlaConfig(**values)  # type: ignore[arg-type]  # keys are the fields, types checked
