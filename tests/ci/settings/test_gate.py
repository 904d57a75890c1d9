"""perf.toml [gate]: strict parsing, validated values, an unreachable design refused at load."""

from __future__ import annotations

import pytest

from ci.errors import ConfigError
from ci.settings.gate import (
    DEFAULT_GATE_METRICS,
    DUET_METRICS,
    GateConfig,
    GateDesign,
    GateMetric,
    parse_gate,
)


def test_empty_table_gives_the_defaults() -> None:
    assert parse_gate({}) == GateConfig()
    assert GateConfig().rule.metrics == DEFAULT_GATE_METRICS


def test_every_key_is_read() -> None:
    g = parse_gate(
        {
            "alpha": 0.02,
            "pass_alpha": 0.1,
            "looks": [16, 32],
            "metrics": [
                {"name": "cpu_ms_per_request", "direction": "lower", "fail_threshold": 0.03},
                {"name": "error_rate", "fail_threshold": 0.002},
            ],
            "min_tail_samples": 50,
            "tail_prior": 4.5,
            "report_threshold": 0.1,
            "report_alpha": 0.02,
            "rate": 80,
            "window_s": 12.5,
            "warmup_windows": 8,
            "unique_fraction": 0.5,
            "write_fraction": 0.0,
            "workers": 2,
            "pin_cpus": True,
            "burst_gap_s": 6.25,  # the longest a 12.5-s window allows
            "db_rtt_ms": 4,
            "tail_margin_ms": 40,
            "docs": 5000,
            "embedder": "hash",
            "corpus_seed": 7,
            "shapes": ["ramp", "sse"],
            "shape_time_scale": 0.01,
            "shape_vu_scale": 0.5,
            "setup_budget_s": 600,
            "budget_s": 300,
            "inconclusive": "failure",
            "harness_changed": "failure",
            "micro_rounds": 16,
            "micro_threshold": 0.5,
        }
    )
    assert (g.rule.inconclusive, g.rule.harness_changed) == ("failure", "failure")
    assert (g.design.setup_budget_s, g.design.budget_s) == (600.0, 300.0)
    assert g.rule.looks == (16, 32)
    assert (g.rule.min_tail_samples, g.rule.tail_prior) == (50, 4.5)
    assert g.rule.metrics == (
        GateMetric("cpu_ms_per_request", "lower", 0.03, "ratio"),
        GateMetric("error_rate", "lower", 0.002, "absolute"),  # absolute by default
    )
    d = g.design
    assert (d.rate, d.window_s, d.warmup_windows, d.workers) == (80.0, 12.5, 8, 2)
    assert d.pin_cpus
    assert not GateDesign().pin_cpus
    assert (d.burst_gap_s, GateDesign().burst_gap_s) == (6.25, 1.5)
    assert (d.db_rtt_ms, GateDesign().db_rtt_ms) == (4.0, 2.0)
    assert (d.tail_margin_ms, GateDesign().tail_margin_ms) == (40.0, 25.0)
    assert d.shapes == ("ramp", "sse")
    assert (d.micro_rounds, GateDesign().micro_rounds) == (16, 12)
    assert g.rule.micro_threshold == 0.5
    assert g.rule.report_only_names == tuple(
        n for n in DUET_METRICS if n not in ("cpu_ms_per_request", "error_rate")
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"alhpa": 0.01}, r"unknown key gate\.alhpa"),
        ({"alpha": 0.6}, r"gate\.alpha = 0\.6: must lie in \(0, 0\.5\)"),
        ({"alpha": True}, r"Expected `float`, got `bool` - at `\$\.alpha`"),
        ({"looks": [12, 12]}, r"gate\.looks = \[12, 12\]: must be increasing"),
        ({"looks": "12"}, r"Expected `array`, got `str` - at `\$\.looks`"),
        ({"rate": "fast"}, r"Expected `float`, got `str` - at `\$\.rate`"),
        ({"warmup_windows": 3}, r"gate\.warmup_windows = 3: must be a multiple of 4"),
        ({"restart_every": -1}, r"gate\.restart_every = -1: must lie in \[0, 9\]"),
        ({"burst_gap_s": 1.0}, r"gate\.burst_gap_s = 1\.0: must be 0 .* or at least 1\.5 s"),
        ({"tail_margin_ms": 0}, r"gate\.tail_margin_ms = 0\.0: must lie in \[1, 1000\] \(ms\)"),
        ({"tail_prior": -1}, r"gate\.tail_prior = -1\.0: must lie in \[0, 1000\]"),
        ({"tail_prior": float("nan")}, r"gate\.tail_prior = nan: must lie in \[0, 1000\]"),
        ({"db_rtt_ms": -1}, r"gate\.db_rtt_ms = -1\.0: must lie in \[0, 50\] \(ms; 0: Postg"),
        ({"db_rtt_ms": 60.0}, r"gate\.db_rtt_ms = 60\.0: must lie in \[0, 50\]"),
        ({"burst_gap_s": -2}, r"gate\.burst_gap_s = -2\.0: must be 0"),
        ({"burst_gap_s": 2, "burst_vus": 0}, r"gate\.burst_gap_s = 2\.0 .* gate\.burst_vus = 0"),
        (
            {"burst_gap_s": 6, "window_s": 10},
            r"gate\.burst_gap_s = 6\.0: .* 2 x 6 = 12 s, more than gate\.window_s = 10 s",
        ),
        ({"rate": 0}, r"gate\.rate = 0\.0: must be > 0"),
        ({"unique_fraction": 1.5}, r"gate\.unique_fraction = 1\.5: must lie in \[0, 1\]"),
        ({"shapes": ["ramp", "soak"]}, r"gate\.shapes: 'soak' is not a shape scenario"),
        ({"embedder": "bert"}, r"gate\.embedder = 'bert'"),
        ({"inconclusive": "fail"}, r"Invalid enum value 'fail' - at `\$\.inconclusive`"),
        ({"harness_changed": True}, r"Expected `str`, got `bool` - at `\$\.harness_changed`"),
        ({"setup_budget_s": 0}, r"gate\.setup_budget_s = 0\.0: must be > 0"),
        ({"micro_rounds": 3}, r"gate\.micro_rounds = 3: must be 0 \(no micro-benchmarks\) or "),
        ({"micro_rounds": 101}, r"gate\.micro_rounds = 101: .* lie in \[4, 100\]"),
        ({"micro_threshold": 0}, r"gate\.micro_threshold = 0\.0: must lie in \(0, 10\]"),
        ({"metrics": []}, r"gate\.metrics = \[\]: must be a non-empty array"),
        ({"metrics": [{"name": "ttfe_p95", "fail_threshold": 0.1}]}, r"not a duet metric"),
        ({"metrics": [{"name": "latency_p50"}]}, r"gate\.metrics\[0\]\.fail_threshold is missing"),
        (
            {"metrics": [{"name": "latency_p50", "fail_threshold": 0.1, "warn": 1}]},
            r"unknown key gate\.metrics\[0\]\.warn",
        ),
        (
            {"metrics": [{"name": "latency_p50", "fail_threshold": 1.5}]},
            r"fail_threshold = 1\.5: must be < 1",
        ),
        (
            {"metrics": [{"name": "latency_p50", "fail_threshold": 0.1}] * 2},
            r"'latency_p50' is listed twice",
        ),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_gate(table)


def test_an_unreachable_first_look_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"gate\.looks\[0\] = 8: .* use 12 or more"):
        parse_gate({"looks": [8, 16, 24]})
