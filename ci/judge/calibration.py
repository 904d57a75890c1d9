"""Calibration figures of the gate: false-alarm and detection rates, with exact intervals.

A calibration is many full gate verdicts of two kinds, each on a fresh stack: A/A (the
candidate differs from the base only in a comment: every FAIL is a false alarm, every
INCONCLUSIVE a PR left waiting) and slowed (the candidate burns a known extra share of CPU
per search: every FAIL is a detection). Rates carry Clopper-Pearson intervals (exact
binomial, two-sided), so "0 of 30" reads as what it is: a false-alarm rate below 11.6 % at
95 %. The SD of the A/A verdicts' CPU change carries a chi-square interval: it measures the
offset between two processes of identical code, which the windows of one gate cannot tell
from an effect, so the CPU fail threshold has to stand clear of it.

=========================================  ==========================
the calibration passes (:func:`calibration_ok`) when
=========================================  ==========================
A/A verdicts that FAIL                     none
A/A verdicts that are INCONCLUSIVE         at most 10 % of the A/A ones
=========================================  ==========================
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

import msgspec
from scipy import stats

from ci.judge.gate_verdict import GateDecision, Stopped

CalibrationKind = Literal["aa", "slowed"]
KINDS: tuple[CalibrationKind, ...] = ("aa", "slowed")
CALIBRATION_KIND = "perfci-calibration"
CALIBRATION_VERSION = 2
MAX_INCONCLUSIVE_SHARE = 0.10  # of the A/A verdicts (calibration_ok)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval of a binomial proportion ``k / n`` (scipy's)."""
    assert n > 0, f"n={n}: need at least one trial"
    assert 0 <= k <= n, f"k={k}, n={n}: need 0 <= k <= n"
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Rate(_Struct, frozen=True, forbid_unknown_fields=True):
    k: int
    n: int
    low: float  # the 95 % Clopper-Pearson interval
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0


def rate(decisions: Sequence[str], hit: str = "fail", confidence: float = 0.95) -> Rate | None:
    """Share of ``decisions`` equal to ``hit`` with its interval (None: no decisions)."""
    n = len(decisions)
    if n == 0:
        return None
    k = sum(d == hit for d in decisions)
    lo, hi = clopper_pearson(k, n, confidence)
    return Rate(k, n, lo, hi)


class Spread(_Struct, frozen=True, forbid_unknown_fields=True):
    median: float
    low: float
    high: float


def spread(values: Sequence[float]) -> Spread | None:
    return Spread(statistics.median(values), min(values), max(values)) if values else None


class Dispersion(_Struct, frozen=True, forbid_unknown_fields=True):
    """The SD of ``n`` values with its interval (chi-square: values drawn from a normal)."""

    sd: float
    low: float
    high: float
    n: int


def dispersion(values: Sequence[float], confidence: float = 0.95) -> Dispersion | None:
    """The sample SD of ``values`` and its two-sided interval (None: fewer than two)."""
    n = len(values)
    if n < 2:
        return None
    sd = statistics.stdev(values)
    df = n - 1
    tail = (1 - confidence) / 2
    low = sd * math.sqrt(df / float(stats.chi2.ppf(1 - tail, df)))
    high = sd * math.sqrt(df / float(stats.chi2.ppf(tail, df)))
    return Dispersion(sd, low, high, n)


def offset_fail_share(sd: float, threshold: float) -> float:
    """Share of identical pull requests whose CPU offset alone lies beyond ``threshold``.

    An offset between two processes is constant over a gate's windows, so the signed-rank
    test finds it whenever it is a percent or two, and the fail threshold is the only guard:
    the share is P(offset > threshold) for an offset drawn from a normal of SD ``sd``.
    """
    if sd <= 0:
        return 0.0
    return float(stats.norm.sf(threshold / sd))


class CalibrationVerdict(_Struct, frozen=True, forbid_unknown_fields=True):
    """One full gate of the calibration: its case, the candidate commit, what the gate said."""

    kind: CalibrationKind
    index: int  # 1, 2, ... within its kind
    seed: int  # the gate's seed (window order, sides' deal)
    candidate: str  # the commit gated against the calibration's parent
    decision: GateDecision
    windows: int
    stopped: Stopped
    cpu_change: float | None  # cpu_ms_per_request's change at the last look (None: not judged)
    seconds: float  # wall time of the whole gate, the candidate's commit included
    folder: str  # the gate's report folder, relative to the calibration's folder


class KindSummary(_Struct, frozen=True, forbid_unknown_fields=True):
    kind: CalibrationKind
    verdicts: int
    passes: int
    fails: int
    inconclusive: int
    fail_rate: Rate  # A/A: false FAILs; slowed: detections
    inconclusive_rate: Rate
    windows: Spread
    seconds: Spread
    cpu_change: Spread | None
    cpu_change_sd: Dispersion | None = None  # over the verdicts that judged CPU (2 or more)


class Calibration(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``calibration.json``: the campaign's inputs, every verdict so far, their summary."""

    kind: str = CALIBRATION_KIND
    version: int = CALIBRATION_VERSION
    ref: str
    parent: str  # the commit every verdict's candidate sits on (the base of every gate)
    seed: int  # every verdict's seed derives from it (ci.experiments.gate.calibrate.plan)
    slowdown: float  # the slowed candidates' SEARCH_DEBUG_CPU_SLOWDOWN default
    cpu_fail_threshold: float | None = None  # the rule's, when the campaign began
    verdicts: tuple[CalibrationVerdict, ...] = ()
    summary: tuple[KindSummary, ...] = ()

    def __post_init__(self) -> None:
        if self.kind != CALIBRATION_KIND:
            raise ValueError(f"kind {self.kind!r}: not a calibration ({CALIBRATION_KIND!r})")
        if self.version != CALIBRATION_VERSION:
            raise ValueError(
                f"version {self.version}: this perfci reads version {CALIBRATION_VERSION}"
            )


def summarize(verdicts: Sequence[CalibrationVerdict]) -> tuple[KindSummary, ...]:
    """Per kind that has verdicts: the decisions' counts, rates, and spreads."""
    out = []
    for kind in KINDS:
        mine = [v for v in verdicts if v.kind == kind]
        decisions = [v.decision for v in mine]
        fails, inconclusive = rate(decisions, "fail"), rate(decisions, "inconclusive")
        windows = spread([float(v.windows) for v in mine])
        seconds = spread([v.seconds for v in mine])
        if fails is None or inconclusive is None or windows is None or seconds is None:
            continue
        cpu = [v.cpu_change for v in mine if v.cpu_change is not None]
        out.append(
            KindSummary(
                kind,
                len(mine),
                decisions.count("pass"),
                fails.k,
                inconclusive.k,
                fails,
                inconclusive,
                windows,
                seconds,
                spread(cpu),
                dispersion(cpu),
            )
        )
    return tuple(out)


def calibration_ok(summary: Sequence[KindSummary]) -> bool:
    """No A/A verdict FAILs and at most 10 % of them are INCONCLUSIVE (the decision table)."""
    aa = next((s for s in summary if s.kind == "aa"), None)
    if aa is None:
        return True
    return aa.fails == 0 and aa.inconclusive <= MAX_INCONCLUSIVE_SHARE * aa.verdicts


def dump_calibration(calibration: Calibration) -> bytes:
    return msgspec.json.format(msgspec.json.encode(calibration), indent=2) + b"\n"


def load_calibration(data: bytes) -> Calibration:
    """Raises ``msgspec.ValidationError``/``DecodeError`` or ``ValueError`` on a bad file."""
    return msgspec.json.decode(data, type=Calibration)
