"""The calibration's markdown: the summary with exact intervals, the outcome, each verdict."""

from __future__ import annotations

import msgspec

from ci.judge.calibration import Calibration, CalibrationVerdict, summarize
from ci.render.gate_calibration import calibration_markdown

PARENT = "c" * 40


def _v(
    kind: str, i: int, decision: str, windows: int, cpu: float | None, s: float
) -> dict[str, object]:
    stopped = "last look" if decision == "inconclusive" else "decided"
    fields = {
        "kind": kind, "index": i, "seed": 10 + i, "candidate": f"{i}" * 40, "decision": decision,
        "windows": windows, "stopped": stopped, "cpu_change": cpu, "seconds": s,
        "folder": f"{kind}-{i:03d}",
    }  # fmt: skip
    return fields


def _calibration(*rows: dict[str, object]) -> Calibration:
    verdicts = tuple(msgspec.convert(r, CalibrationVerdict) for r in rows)
    return Calibration(
        ref="HEAD", parent=PARENT, seed=7, slowdown=0.1, verdicts=verdicts,
        summary=summarize(verdicts),
    )  # fmt: skip


HEADER = (
    "Calibration of `HEAD` (cccccccccccc), seed 7: each verdict a full gate on a fresh stack.\n"
    "\n"
    "| kind | verdicts | pass | fail | inconclusive | FAIL rate (95 % CI) | "
    "INCONCLUSIVE rate (95 % CI) | windows: median (range) | wall time s: median (range) | "
    "CPU change: median (range) | CPU change: SD (95 % CI) |\n"
    "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|\n"
)
VERDICTS = (
    "| verdict | decision | windows | stopped | wall time s | CPU change | seed | candidate |\n"
    "|---|---|---:|---|---:|---:|---:|---|\n"
)


def test_the_summary_the_outcome_and_every_verdict() -> None:
    c = _calibration(
        _v("aa", 1, "pass", 12, 0.004, 610.2),
        _v("slowed", 1, "fail", 12, 0.097, 598.0),
        _v("aa", 2, "inconclusive", 36, None, 1490.0),
    )
    assert calibration_markdown(c) == (
        HEADER + "| A/A (a comment) | 2 | 1 | 0 | 1 | 0/2 = 0.0 % [0.0 %, 84.2 %] | "
        "1/2 = 50.0 % [1.3 %, 98.7 %] | 24 (12 to 36) | 1050 (610 to 1490) | "
        "+0.4 % (+0.4 % to +0.4 %) | - |\n"
        "| slowed (+10 % CPU per search) | 1 | 0 | 1 | 0 | 1/1 = 100.0 % [2.5 %, 100.0 %] | "
        "0/1 = 0.0 % [0.0 %, 97.5 %] | 12 (12 to 12) | 598 (598 to 598) | "
        "+9.7 % (+9.7 % to +9.7 %) | - |\n"
        "\n"
        "Failed (exit 1): 0 of 2 A/A verdicts FAILed, 1 INCONCLUSIVE "
        "(allowed: no FAIL, at most 10 % INCONCLUSIVE).\n"
        "\n" + VERDICTS + "| aa-001 | pass | 12 | decided | 610 | +0.4 % | 11 | 111111111111 |\n"
        "| slowed-001 | fail | 12 | decided | 598 | +9.7 % | 11 | 111111111111 |\n"
        "| aa-002 | inconclusive | 36 | last look | 1490 | - | 12 | 222222222222 |\n"
    )


def test_the_sd_of_the_cpu_change_has_its_interval() -> None:
    c = _calibration(
        _v("aa", 1, "pass", 12, 0.01, 300.0),
        _v("aa", 2, "pass", 12, -0.01, 300.0),
        _v("aa", 3, "pass", 12, 0.03, 300.0),
        _v("aa", 4, "pass", 24, -0.03, 420.0),
    )
    # SD 2.58 %, its 95 % interval sqrt(3 / chi2(0.975, 3)) and sqrt(3 / chi2(0.025, 3))
    assert "| +0.0 % (-3.0 % to +3.0 %) | 2.6 % [1.5 %, 9.6 %] |\n" in calibration_markdown(c)
    assert "offset" not in calibration_markdown(c)  # no threshold recorded: no projection
    told = calibration_markdown(msgspec.structs.replace(c, cpu_fail_threshold=0.05))
    assert (
        "\nThe A/A CPU change has an SD of 2.6 % [1.5 %, 9.6 %] over 4 verdicts: the offset "
        "between two processes of identical code. With the CPU fail threshold of +5 %, an "
        "offset of that SD alone FAILs about 2.6 % of identical pull requests (0.0 % to "
        "30.2 % over its interval).\n" in told
    )


def test_a_quiet_campaign_passes_and_an_empty_one_says_so() -> None:
    quiet = calibration_markdown(_calibration(_v("aa", 1, "pass", 12, -0.002, 600.0)))
    assert (
        "\nPassed (exit 0): 0 of 1 A/A verdicts FAILed, 0 INCONCLUSIVE "
        "(allowed: no FAIL, at most 10 % INCONCLUSIVE).\n" in quiet
    )
    assert "| aa-001 | pass | 12 | decided | 600 | -0.2 % | 11 | 111111111111 |\n" in quiet
    assert calibration_markdown(_calibration()) == (
        HEADER + "| (no verdict yet) | 0 | | | | | | | | | |\n"
        "\n"
        "No A/A verdict yet: nothing to judge the gate's false alarms by (exit 0).\n"
        "\n" + VERDICTS
    )
