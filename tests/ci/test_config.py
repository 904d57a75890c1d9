from __future__ import annotations

from pathlib import Path

import pytest

from ci.config import (
    DEFAULT_METRICS,
    CompareConfig,
    MetricSpec,
    PerfConfig,
    SlaConfig,
    load_perf_config,
)
from ci.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perf.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_perf_config(tmp_path / "absent.toml")
    assert config == PerfConfig()
    assert config.compare.fail_threshold == 0.05
    assert config.compare.warn_threshold == 0.02
    assert config.compare.min_pairs == 5
    assert config.compare.confidence == 0.95
    assert config.compare.bootstrap_resamples == 10_000
    assert config.compare.alpha == 0.05
    assert config.sla == SlaConfig(2000.0, 5000.0, 0.001, 0.70, 5.0)
    assert load_perf_config(None) == PerfConfig()


def test_repository_perf_toml_matches_the_defaults() -> None:
    assert load_perf_config(REPO_ROOT / "perf.toml") == PerfConfig()


def test_values_and_metrics_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[compare]
fail_threshold = 0.10
warn_threshold = 0.03
min_pairs = 7
[[compare.metrics]]
name = "latency_p99"
direction = "lower"
[[compare.metrics]]
name = "error_rate"
direction = "lower"
mode = "absolute"
fail_threshold = 0.01
warn_threshold = 0.005
[sla]
p95_ms = 1500
[run]
anything = "owned by another module"
[stack]
[profiles.pr]
duration = "60s"
[memory]
""",
    )
    config = load_perf_config(path)
    assert config.compare.fail_threshold == 0.10
    assert config.compare.min_pairs == 7
    assert config.compare.metrics == (
        MetricSpec("latency_p99", "lower"),
        MetricSpec("error_rate", "lower", "absolute", 0.01, 0.005),
    )
    assert config.sla.p95_ms == 1500.0
    assert config.sla.p99_ms == 5000.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[compare]\nfail_treshold = 0.1\n", "unknown key compare.fail_treshold"),
        ("[sla]\np95 = 1\n", "unknown key sla.p95"),
        ("[reporting]\nx = 1\n", "unknown top-level key 'reporting'"),
        ("compare = 3\n", "compare = 3: must be a table"),
        (
            "[compare]\nfail_threshold = 'high'\n",
            "compare.fail_threshold = 'high': must be a number",
        ),
        ("[compare]\nfail_threshold = true\n", "compare.fail_threshold = True: must be a number"),
        ("[compare]\nfail_threshold = 1.5\n", "compare.fail_threshold = 1.5: must lie in (0, 1)"),
        ("[compare]\nwarn_threshold = 0.2\n", "compare.warn_threshold = 0.2: must lie in (0, fail"),
        ("[compare]\nmin_pairs = 4\n", "compare.min_pairs = 4 makes a fail unreachable"),
        ("[compare]\nmin_pairs = 5.0\n", "compare.min_pairs = 5.0: must be an integer"),
        ("[compare]\nconfidence = 95\n", "compare.confidence = 95.0: must lie in (0.5, 1)"),
        ("[compare]\nalpha = 0\n", "compare.alpha = 0.0: must lie in (0, 0.5)"),
        ("[compare]\nbootstrap_resamples = 10\n", "compare.bootstrap_resamples = 10: must lie"),
        ("[compare]\nfail_threshold = nan\n", "compare.fail_threshold = nan: must be finite"),
        ("[compare]\nmetrics = []\n", "compare.metrics = []: must be a non-empty array"),
        (
            "[compare]\nmetrics = [{ name = 'p95', direction = 'lower' }]\n",
            "compare.metrics[0].name = 'p95': unknown metric",
        ),
        (
            "[compare]\nmetrics = [{ name = 'latency_p95', direction = 'down' }]\n",
            "compare.metrics[0].direction = 'down': must be 'lower' or 'higher'",
        ),
        (
            "[compare]\nmetrics = [{ name = 'latency_p95', direction = 'lower', unit = 'ms' }]\n",
            "unknown key compare.metrics[0].unit",
        ),
        (
            "[compare]\nmetrics = [{ name = 'latency_p95', direction = 'lower' },"
            " { name = 'latency_p95', direction = 'lower' }]\n",
            "metric 'latency_p95' is listed twice",
        ),
        ("[sla]\nerror_rate = 2\n", "sla.error_rate = 2.0: must lie in [0, 1]"),
        ("[sla]\np99_ms = -1\n", "sla.p99_ms = -1.0: must be > 0"),
        ("[sla]\ncache_hit_min_lookups = -5\n", "sla.cache_hit_min_lookups = -5: must be >= 0"),
        ("[sla]\ncache_hit_min_lookups = 1.5\n", "sla.cache_hit_min_lookups"),
        ("[compare\n", "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_perf_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_config_objects_validate_when_built_directly() -> None:
    with pytest.raises(ConfigError, match=r"compare\.metrics\[error_rate\]\.warn_threshold"):
        CompareConfig(metrics=(MetricSpec("error_rate", "lower", "absolute", 0.001, 0.01),))
    assert CompareConfig().metrics == DEFAULT_METRICS
