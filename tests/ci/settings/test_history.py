"""ci.settings.history: perf.toml [history], parsed strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.settings import load_perf_config
from ci.settings.history import HistoryConfig, parse_history


def test_an_empty_table_gives_the_defaults() -> None:
    assert parse_history({}) == HistoryConfig()


def test_every_key_is_read() -> None:
    config = parse_history(
        {
            "profile": "smoke",
            "scenarios": ["arrival_rate", "vegeta"],
            "max_pvalue": 0.001,
            "min_magnitude": 0.01,
            "window_len": 30,
            "regression_threshold": 0.1,
            "issue_label": "perf",
        }
    )
    assert config == HistoryConfig(
        "smoke", ("arrival_rate", "vegeta"), 0.001, 0.01, 30, 0.1, "perf"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"threshold": 0.05}, "unknown key history.threshold"),
        ({"profile": 3}, "history.profile = 3: must be a string"),
        ({"profile": "../x"}, "must be a profile name"),
        ({"scenarios": "ramp"}, "must be an array of strings"),
        ({"scenarios": []}, "at least one scenario"),
        ({"scenarios": ["a", "a"]}, "names repeat"),
        ({"scenarios": ["a/b"]}, "not a scenario name"),
        ({"max_pvalue": 0}, r"max_pvalue = 0.0: must lie in \(0, 1\)"),
        ({"max_pvalue": True}, "must be a number"),
        ({"max_pvalue": float("nan")}, "must be finite"),
        ({"min_magnitude": 1.0}, r"must lie in \[0, 1\)"),
        ({"window_len": 1}, "window_len = 1: must be >= 2"),
        ({"window_len": 2.5}, "must be an integer"),
        ({"regression_threshold": 1.5}, "regression_threshold = 1.5"),
        ({"issue_label": " "}, "1-50 characters"),
    ],
)
def test_bad_values_are_refused_naming_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_history(table)


def test_perf_toml_history_table_is_read_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "perf.toml"
    path.write_text('[history]\nprofile = "smoke"\nwindow_len = 20\n')
    config = load_perf_config(path)
    assert config.history == HistoryConfig(profile="smoke", window_len=20)
    path.write_text("[history]\nwindow = 20\n")
    with pytest.raises(ConfigError, match=r"perf\.toml: unknown key history\.window"):
        load_perf_config(path)
    # the repository's own file parses, and its [history] is what the CLI uses
    assert load_perf_config().history.scenarios
