from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.settings import (
    REPO_PERF_TOML,
    SLA_FIELDS,
    PerfConfig,
    SlaConfig,
    load_perf_config,
    parse_perf_config,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
REPO_SLA = SlaConfig(
    p95_ms=2000.0,
    p99_ms=5000.0,
    error_rate=0.001,
    ttfe_p95_ms=2000.0,
    spike_error_rate=0.01,
    cache_hit_ratio=0.70,
    cache_hit_min_lookups=2000,
    rss_slope_mb_per_10min=5.0,
    both_breach_margin=0.05,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perf.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_path_reads_the_repository_file() -> None:
    assert REPO_PERF_TOML == REPO_ROOT / "perf.toml"
    config = load_perf_config(None)
    assert config == PerfConfig()
    assert config.sla == REPO_SLA
    assert load_perf_config() == PerfConfig()


def test_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    # A mistyped --config must not silently judge with other settings.
    with pytest.raises(ConfigError, match=r"absent\.toml: no such file \(leave out --config"):
        load_perf_config(tmp_path / "absent.toml")


def test_repository_perf_toml_matches_the_defaults() -> None:
    assert load_perf_config(REPO_ROOT / "perf.toml") == PerfConfig()


def test_sla_values_are_read(tmp_path: Path) -> None:
    config = load_perf_config(_write(tmp_path, "[sla]\np95_ms = 1500\nboth_breach_margin = 0.1\n"))
    assert (config.sla.p95_ms, config.sla.both_breach_margin) == (1500.0, 0.1)
    assert config.sla.p99_ms == 5000.0  # a key left out: the repository's value


@pytest.mark.parametrize(
    "text",
    [
        '[run]\nanything = "read by nobody"\n',
        "[stack]\n",
        '[profiles.pr]\nduration = "60s"\n',
        "[memory]\n",
    ],
)
def test_tables_nothing_reads_are_errors(tmp_path: Path, text: str) -> None:
    # These were once accepted and silently ignored.
    name = text[1:].split("]")[0].split(".")[0]
    path = _write(tmp_path, "[sla]\n" + text)
    with pytest.raises(ConfigError) as info:
        load_perf_config(path)
    allowed = "(allowed tables: sla, history, gate, capacity)"
    assert f"unknown top-level key {name!r} {allowed}" in str(info.value)
    assert str(path) in str(info.value)


def test_the_repository_file_must_declare_every_sla_key() -> None:
    for key in SLA_FIELDS:
        sla = {k: getattr(REPO_SLA, k) for k in SLA_FIELDS if k != key}
        with pytest.raises(ConfigError, match=rf"sla\.{key} is missing: \[sla\] must declare"):
            parse_perf_config({"sla": sla})
    full = {k: getattr(REPO_SLA, k) for k in SLA_FIELDS}
    assert parse_perf_config({"sla": full}).sla == REPO_SLA


def test_sla_has_no_defaults_in_code() -> None:
    with pytest.raises(TypeError):
        SlaConfig()  # type: ignore[call-arg]  # the point: every limit must be given


def test_k6_env_names_every_sla_field() -> None:
    assert REPO_SLA.k6_env() == {
        "PERFCI_SLA_P95_MS": "2000",
        "PERFCI_SLA_P99_MS": "5000",
        "PERFCI_SLA_ERROR_RATE": "0.001",
        "PERFCI_SLA_TTFE_P95_MS": "2000",
        "PERFCI_SLA_SPIKE_ERROR_RATE": "0.01",
        "PERFCI_SLA_CACHE_HIT_RATIO": "0.7",
        "PERFCI_SLA_CACHE_HIT_MIN_LOOKUPS": "2000",
        "PERFCI_SLA_RSS_SLOPE_MB_PER_10MIN": "5",
        "PERFCI_SLA_BOTH_BREACH_MARGIN": "0.05",
    }
    odd = dataclasses.replace(REPO_SLA, p95_ms=1234.5678, error_rate=1e-7)
    env = odd.k6_env()
    assert float(env["PERFCI_SLA_P95_MS"]) == 1234.5678
    assert float(env["PERFCI_SLA_ERROR_RATE"]) == 1e-7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[compare]\nfail_threshold = 0.05\n", "unknown top-level key 'compare'"),
        ("[sla]\np95 = 1\n", "unknown key sla.p95"),
        ("[reporting]\nx = 1\n", "unknown top-level key 'reporting'"),
        ("sla = 3\n", "sla = 3: must be a table"),
        ("[sla]\np95_ms = 'high'\n", "sla.p95_ms = 'high': must be a number"),
        ("[sla]\np95_ms = true\n", "sla.p95_ms = True: must be a number"),
        ("[sla]\np95_ms = nan\n", "sla.p95_ms = nan: must be finite"),
        ("[sla]\nboth_breach_margin = 0\n", "sla.both_breach_margin = 0.0: must lie in (0, 1)"),
        ("[sla]\nerror_rate = 2\n", "sla.error_rate = 2.0: must lie in [0, 1]"),
        ("[sla]\np99_ms = -1\n", "sla.p99_ms = -1.0: must be > 0"),
        ("[sla]\nttfe_p95_ms = 0\n", "sla.ttfe_p95_ms = 0.0: must be > 0"),
        ("[sla]\nspike_error_rate = 1.5\n", "sla.spike_error_rate = 1.5: must lie in [0, 1]"),
        ("[sla]\ncache_hit_min_lookups = -5\n", "sla.cache_hit_min_lookups = -5: must be >= 0"),
        ("[sla]\ncache_hit_min_lookups = 1.5\n", "sla.cache_hit_min_lookups"),
        ("[sla\n", "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_perf_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_sla_per_machine_class_overrides_some_limits(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[sla.machine."github-2vcpu"]\np95_ms = 3000\nerror_rate = 0.05\n'
        "[sla.machine.big]\np99_ms = 1000\n",
    )
    config = load_perf_config(path)
    assert config.sla == REPO_SLA
    runner = config.sla_for("github-2vcpu")
    assert (runner.p95_ms, runner.error_rate) == (3000.0, 0.05)
    assert runner.p99_ms == REPO_SLA.p99_ms  # the rest comes from [sla]
    assert config.sla_for("big").p99_ms == 1000.0
    assert config.sla_for("local-2cpu") == REPO_SLA  # no overrides: [sla]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sla.machine.x]\np95 = 1\n", r"unknown key sla\.machine\.x\.p95"),
        ("[sla.machine.x]\np95_ms = 'fast'\n", r"sla\.machine\.x\.p95_ms = 'fast': must be"),
        ("[sla]\nmachine = 3\n", r"sla\.machine = 3: must hold one table per class"),
    ],
)
def test_bad_machine_overrides_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_perf_config(_write(tmp_path, text))


def test_the_gate_table_is_read(tmp_path: Path) -> None:
    config = load_perf_config(_write(tmp_path, "[gate]\nlooks = [16, 32]\nrate = 90\n"))
    assert config.gate.rule.looks == (16, 32)
    assert config.gate.design.rate == 90.0
    # six default primary metrics, two looks: p <= 0.01 / 2 / 6 needs 11 pairs
    with pytest.raises(ConfigError, match=r"gate\.looks\[0\] = 4: .* use 11 or more"):
        load_perf_config(_write(tmp_path, "[gate]\nlooks = [4, 8]\n"))
