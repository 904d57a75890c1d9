"""perfci calibrate: arguments checked before anything runs; the summary's rates and intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.experiments.gate.calibrate import run_calibration, summarize
from ci.render.gate_calibration import calibration_table
from ci.settings import PerfConfig


@pytest.mark.parametrize(
    ("aa", "slowed", "slowdown", "message"),
    [
        (0, 0, 0.1, "ask for at least one verdict"),
        (-1, 3, 0.1, "ask for at least one verdict"),
        (2, 2, 0.0, r"--slowdown 0\.0: expected a share of CPU"),
        (2, 2, 11.0, r"--slowdown 11\.0"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    tmp_path: Path, aa: int, slowed: int, slowdown: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_calibration(tmp_path, "HEAD", aa, slowed, slowdown, tmp_path / "out", PerfConfig())
    assert not (tmp_path / "out").exists()


def _v(kind: str, decision: str, pairs: int = 12, cpu: float | None = 0.0) -> dict[str, object]:
    return {"kind": kind, "decision": decision, "pairs": pairs, "cpu_change": cpu}


def test_summary_rates_and_intervals() -> None:
    verdicts = [_v("aa", "pass") for _ in range(19)] + [_v("aa", "inconclusive", 36)]
    verdicts += [_v("slowed", "fail", cpu=0.09) for _ in range(18)]
    verdicts += [_v("slowed", "pass", cpu=0.04), _v("slowed", "inconclusive", 36, cpu=0.05)]
    s = summarize(verdicts)
    assert (s["aa"]["pass"], s["aa"]["fail"], s["aa"]["inconclusive"]) == (19, 0, 1)
    assert s["aa"]["fail_rate"] == 0.0
    assert s["aa"]["fail_rate_ci95"][0] == 0.0
    assert s["aa"]["fail_rate_ci95"][1] == pytest.approx(0.1684, abs=1e-4)
    assert s["slowed"]["fail_rate"] == pytest.approx(0.9)
    assert s["slowed"]["median_cpu_change"] == pytest.approx(0.09)
    assert s["slowed"]["median_pairs"] == 12
    table = calibration_table(s, 0.1)
    assert "| A/A (identical): 20 | 19 | 0 | 1 | 0/20 = 0.0 % [0.0 %, 16.8 %] |" in table
    assert "slowed (+10 % CPU per search): 20 | 1 | 18 | 1 | 18/20 = 90.0 %" in table
