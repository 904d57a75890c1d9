"""``perf.toml [history]``: the history of main and its change-point detection (Apache Otava).

Every key is optional; a key the table leaves out takes the default below. Parsing is
strict like the rest of ``perf.toml``: an unknown key or a bad value is a
:class:`ConfigError` naming it.

========================  ==========  =====================================================
key                       default     meaning
========================  ==========  =====================================================
``profile``               ``"pr"``    the load profile whose runs on main make the history
``scenarios``             see below   the scenarios whose series are analysed and charted
``max_pvalue``            0.0001      Otava: a change point needs a p-value below this
``min_magnitude``         0.0         Otava: and a relative change above this (0 = any)
``window_len``            30          Otava: commits per sliding window of its split step
``regression_threshold``  0.05        a change point worse than this (relative) is a
                                      regression; an absolute metric (error rate) uses its
                                      ``[gate]`` ``fail_threshold`` instead
``issue_label``           ``"perf-    the label of the GitHub issues filed per regression
                          regression"``
========================  ==========  =====================================================

Why 30 and 0.0001 rather than Otava's 50 and 0.001 (measured on synthetic histories with
normal noise, 300 seeds each): a flat 40-commit history gets a change point in 0.7 %
(3.3 % at Otava's defaults); a +12 % step at 3 % noise is found within one commit in 98 %
either way; and a +15 % step that is reverted 16 commits later (2 % noise) has both of its
change points found in 99.7 %, against 16 % with a 50-commit window at this p-value.

The metrics analysed, and the directions written to the store's ``otava.yaml``, are the
PR gate's primary metrics (``[gate] metrics``, see
:func:`ci.history.detect.primary_metrics`), never a list of this module's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ci.errors import ConfigError

# The steady, open-model scenario of every profile: its latency and CPU per request are
# the quiet figures a history is worth keeping of.
DEFAULT_SCENARIOS: tuple[str, ...] = ("arrival_rate",)
HISTORY_KEYS = (
    "profile",
    "scenarios",
    "max_pvalue",
    "min_magnitude",
    "window_len",
    "regression_threshold",
    "issue_label",
)


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    profile: str = "pr"
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    max_pvalue: float = 0.0001
    min_magnitude: float = 0.0
    window_len: int = 30
    regression_threshold: float = 0.05
    issue_label: str = "perf-regression"

    def __post_init__(self) -> None:
        if not self.profile or not self.profile.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"history.profile = {self.profile!r}: must be a profile name")
        if not self.scenarios:
            raise ConfigError("history.scenarios: must name at least one scenario")
        for name in self.scenarios:
            if not name or not name.replace("_", "").isalnum():
                raise ConfigError(f"history.scenarios: {name!r} is not a scenario name")
        if len(set(self.scenarios)) != len(self.scenarios):
            raise ConfigError(f"history.scenarios = {list(self.scenarios)}: names repeat")
        if not 0 < self.max_pvalue < 1:
            raise ConfigError(f"history.max_pvalue = {self.max_pvalue!r}: must lie in (0, 1)")
        if not 0 <= self.min_magnitude < 1:
            raise ConfigError(f"history.min_magnitude = {self.min_magnitude!r}: must lie in [0, 1)")
        # Otava's split step needs at least two points per window.
        if self.window_len < 2:
            raise ConfigError(f"history.window_len = {self.window_len!r}: must be >= 2")
        if not 0 < self.regression_threshold < 1:
            raise ConfigError(
                f"history.regression_threshold = {self.regression_threshold!r}: must lie in (0, 1)"
            )
        if not self.issue_label.strip() or len(self.issue_label) > 50:
            raise ConfigError(
                f"history.issue_label = {self.issue_label!r}: must be 1-50 characters"
            )


def parse_history(data: Mapping[str, object]) -> HistoryConfig:
    """Build a :class:`HistoryConfig` from the ``[history]`` table of a parsed document."""
    for key in data:
        if key not in HISTORY_KEYS:
            raise ConfigError(f"unknown key history.{key} (known: {', '.join(HISTORY_KEYS)})")
    d = HistoryConfig()
    return HistoryConfig(
        profile=_string("profile", data.get("profile", d.profile)),
        scenarios=_strings("scenarios", data.get("scenarios", list(d.scenarios))),
        max_pvalue=_number("max_pvalue", data.get("max_pvalue", d.max_pvalue)),
        min_magnitude=_number("min_magnitude", data.get("min_magnitude", d.min_magnitude)),
        window_len=_integer("window_len", data.get("window_len", d.window_len)),
        regression_threshold=_number(
            "regression_threshold", data.get("regression_threshold", d.regression_threshold)
        ),
        issue_label=_string("issue_label", data.get("issue_label", d.issue_label)),
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"history.{key} = {_short(value)}: must be a string")
    return value


def _strings(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"history.{key} = {_short(value)}: must be an array of strings")
    return tuple(value)


def _number(key: str, value: object) -> float:
    # TOML booleans are Python ints; refuse them explicitly.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"history.{key} = {_short(value)}: must be a number")
    if not math.isfinite(value):
        raise ConfigError(f"history.{key} = {value!r}: must be finite")
    return float(value)


def _integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"history.{key} = {_short(value)}: must be an integer")
    return value
