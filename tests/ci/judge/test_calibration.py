"""Clopper-Pearson intervals (exact, the textbook values), the SD's interval, the summary."""

from __future__ import annotations

import statistics

import msgspec
import numpy as np
import pytest

from ci.judge.calibration import (
    Calibration,
    calibration_ok,
    clopper_pearson,
    dispersion,
    dump_calibration,
    load_calibration,
    offset_fail_share,
    rate,
    summarize,
)
from ci.judge.calibration import CalibrationVerdict as CV


def test_zero_of_twenty() -> None:
    lo, hi = clopper_pearson(0, 20)
    assert lo == 0.0
    assert hi == pytest.approx(0.1684, abs=1e-4)  # the "rule of three"'s exact cousin


def test_all_of_twenty() -> None:
    lo, hi = clopper_pearson(20, 20)
    assert lo == pytest.approx(0.8316, abs=1e-4)
    assert hi == 1.0


def test_middle() -> None:
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.1871, abs=1e-4)
    assert hi == pytest.approx(0.8129, abs=1e-4)


def test_rate_counts_the_hits() -> None:
    r = rate(["pass", "fail", "pass", "inconclusive"])
    assert r is not None
    assert (r.k, r.n, r.value) == (1, 4, 0.25)
    assert rate([]) is None


def _v(kind: str, i: int, decision: str, windows: int = 12, cpu: float | None = 0.0) -> CV:
    fields = {
        "kind": kind, "index": i, "seed": 100 + i, "candidate": f"{i:040x}",
        "decision": decision, "windows": windows, "stopped": "decided", "cpu_change": cpu,
        "seconds": 300.0 + i, "folder": f"{kind}-{i:03d}",
    }  # fmt: skip
    return msgspec.convert(fields, CV)


def test_the_summary_counts_rates_and_spreads_per_kind() -> None:
    verdicts = [_v("aa", i, "pass") for i in range(1, 29)]
    verdicts += [_v("aa", 29, "inconclusive", 36, None), _v("aa", 30, "fail", 24, 0.03)]
    verdicts += [_v("slowed", i, "fail", cpu=0.09 + i / 1000) for i in range(1, 10)]
    verdicts += [_v("slowed", 10, "pass", cpu=0.04)]
    aa, slowed = summarize(verdicts)
    assert (aa.kind, aa.verdicts, aa.passes, aa.fails, aa.inconclusive) == ("aa", 30, 28, 1, 1)
    assert (aa.fail_rate.k, aa.fail_rate.n) == (1, 30)
    assert aa.fail_rate.low == pytest.approx(0.000844, abs=1e-5)
    assert aa.fail_rate.high == pytest.approx(0.1722, abs=1e-4)
    assert aa.inconclusive_rate == aa.fail_rate
    assert (aa.windows.median, aa.windows.low, aa.windows.high) == (12, 12, 36)
    assert (aa.seconds.low, aa.seconds.high) == (301.0, 330.0)
    assert aa.cpu_change is not None
    assert (aa.cpu_change.median, aa.cpu_change.high) == (0.0, 0.03)  # the None left out
    assert aa.cpu_change_sd is not None
    assert aa.cpu_change_sd.n == 29
    assert aa.cpu_change_sd.sd == pytest.approx(statistics.stdev([0.0] * 28 + [0.03]))
    assert (slowed.fails, slowed.fail_rate.value) == (9, 0.9)
    assert slowed.cpu_change is not None
    assert slowed.cpu_change.median == pytest.approx(0.0945)
    assert summarize([v for v in verdicts if v.kind == "slowed"])[0].kind == "slowed"
    assert summarize([]) == ()


def test_the_sd_of_the_cpu_change_carries_its_chi_square_interval() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(400):  # campaigns of 10 verdicts, offsets of SD 2 %
        d = dispersion(list(rng.normal(0.0, 0.02, size=10)))
        assert d is not None
        assert d.low < d.sd < d.high
        covered += d.low <= 0.02 <= d.high
    assert 0.92 <= covered / 400 <= 0.98  # a 95 % interval covers the true SD 95 % of the time
    known = dispersion([0.01, -0.01, 0.03, -0.03])
    assert known is not None
    assert known.sd == pytest.approx(statistics.stdev([0.01, -0.01, 0.03, -0.03]))
    assert (known.low, known.high) == pytest.approx(
        (known.sd * 0.5665, known.sd * 3.7285), rel=1e-3
    )  # sqrt(3 / chi2(0.975, 3)), sqrt(3 / chi2(0.025, 3))
    assert dispersion([0.01]) is None
    assert summarize([_v("aa", 1, "pass")])[0].cpu_change_sd is None


def test_an_offset_fails_a_pr_when_it_lies_beyond_the_threshold() -> None:
    assert offset_fail_share(0.02, 0.05) == pytest.approx(0.00621, abs=1e-5)  # 2.5 SD
    assert offset_fail_share(0.03, 0.05) == pytest.approx(0.0478, abs=1e-4)
    assert offset_fail_share(0.0, 0.05) == 0.0
    rng = np.random.default_rng(9)
    drawn = rng.normal(0.0, 0.025, size=200_000)
    assert offset_fail_share(0.025, 0.05) == pytest.approx(float((drawn > 0.05).mean()), abs=2e-3)


def test_the_calibration_passes_with_no_false_fail_and_at_most_a_tenth_inconclusive() -> None:
    ten_pass = [_v("aa", i, "pass") for i in range(1, 11)]
    assert calibration_ok(summarize(ten_pass))
    assert calibration_ok(summarize([*ten_pass[:9], _v("aa", 10, "inconclusive")]))
    two_unsure = [*ten_pass[:8], _v("aa", 9, "inconclusive"), _v("aa", 10, "inconclusive")]
    assert not calibration_ok(summarize(two_unsure))
    assert not calibration_ok(summarize([*ten_pass[:9], _v("aa", 10, "fail")]))
    assert calibration_ok(summarize([_v("slowed", 1, "pass")]))  # no A/A: nothing refutes it
    assert calibration_ok(())


def test_the_file_round_trips_and_refuses_another_kind() -> None:
    verdicts = (_v("aa", 1, "pass"), _v("slowed", 1, "fail", cpu=None))
    c = Calibration(
        ref="HEAD", parent="a" * 40, seed=3, slowdown=0.1, verdicts=verdicts,
        summary=summarize(verdicts),
    )  # fmt: skip
    assert load_calibration(dump_calibration(c)) == c
    with pytest.raises(ValueError, match="not a calibration"):
        load_calibration(dump_calibration(c).replace(b"perfci-calibration", b"gate"))
