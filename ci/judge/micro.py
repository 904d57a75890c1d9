"""The micro-benchmarks' decision: per case a paired test over the rounds, Holm across cases.

Each round ran one fresh process per side (:mod:`ci.experiments.gate.micro`). A case's
effect in one round is ``log(candidate / base)`` of its seconds per call: positive is
slower. Within one process every call shares that process's code layout and memory
placement (fresh processes of identical code differ by ~2.5 % SD), so more calls do not
average that offset out; more processes do, and the rounds are the pairs.

=========================================================  =================================
per case, over the rounds both sides measured it           status
=========================================================  =================================
the one-sided exact signed-rank test (H1: slower) is       fail
Holm-rejected across the judged cases at
``alpha * MICRO_ALPHA_SHARE``, and the Hodges-Lehmann
change per call is at least ``gate.micro_threshold``
otherwise: the two-sided p at most ``gate.report_alpha``   changed (in the table, never
and the change beyond ``gate.report_threshold``, either    failing)
way
otherwise                                                  pass
the case is missing on a side (that side's code lacks      missing (not judged)
it), or fewer than 2 rounds measured it
=========================================================  =================================

The statistics are the gate's own (:func:`~ci.judge.gate.signed_rank_p`,
:func:`~ci.judge.gate.hodges_lehmann`, :func:`~ci.judge.gate.holm_reject` and
:func:`~ci.judge.duet.hl_interval`): exact, no resampling, so judging the same figures
twice gives the same decision. For identical code each case's effects are symmetric
around 0, so Holm keeps the chance of any FAIL among the cases at most
``alpha * MICRO_ALPHA_SHARE``; that is what this check adds to a pull request's false-FAIL
rate. With n rounds the smallest one-sided p is 2^-n: fewer rounds than Holm's first
level needs cannot FAIL, and :attr:`MicroCheck.reachable` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ci.judge.duet import hl_interval
from ci.judge.gate import FloatArray, hodges_lehmann, holm_reject, signed_rank_p
from ci.results.duet import Side
from ci.results.micro import MicroRun
from ci.settings.gate import GateRule

MICRO_ALPHA_SHARE = 0.25  # the micro-benchmarks' level, as a share of gate.alpha
CaseStatus = Literal["fail", "changed", "pass", "missing"]
MicroStatus = Literal["pass", "fail"]


@dataclass(frozen=True, slots=True)
class MicroCase:
    """One case judged: medians per side, the change per call, its test."""

    name: str
    status: CaseStatus
    rounds: int  # rounds judged (both sides measured the case)
    base: float | None  # median seconds per call over the rounds (None: missing)
    candidate: float | None
    change: float | None = None  # Hodges-Lehmann relative change per call
    interval: tuple[float, float] | None = None  # its exact 95 % interval
    p_slower: float | None = None  # one-sided signed-rank p, H1: the candidate is slower
    note: str | None = None  # why a case is not judged


@dataclass(frozen=True, slots=True)
class MicroCheck:
    status: MicroStatus
    cases: tuple[MicroCase, ...]
    level: float  # Holm's family-wise level across the judged cases
    reachable: bool  # whether the rounds can reach Holm's first level (2^-n <= level / cases)
    reasons: tuple[str, ...]

    @property
    def judged(self) -> int:
        return sum(c.status != "missing" for c in self.cases)


def micro_level(rule: GateRule) -> float:
    """The check's family-wise level: its share of ``rule.alpha``."""
    return rule.alpha * MICRO_ALPHA_SHARE


def relative(x: float) -> str:
    """A relative change as the reasons and the table show it: +31.0 %, +1,400 %."""
    digits = 0 if abs(x) >= 1 else 1
    return f"{x * 100:+,.{digits}f} %"


def per_call(seconds: float | None) -> str:
    """Seconds per call in ns, us or ms, three significant digits."""
    if seconds is None:
        return "n/a"
    for unit, scale in (("ns", 1e-9), ("\u00b5s", 1e-6), ("ms", 1e-3)):
        if seconds < scale * 1000:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _paired(run: MicroRun, case: str) -> tuple[list[float], list[float]]:
    pairs = [
        (b, c)
        for b, c in zip(run.figures(case, "base"), run.figures(case, "candidate"), strict=True)
        if b is not None and c is not None
    ]
    return [b for b, _c in pairs], [c for _b, c in pairs]


def _missing(run: MicroRun, case: str, rounds: int) -> MicroCase:
    lacking: list[Side] = [
        side for side in ("base", "candidate") if all(x is None for x in run.figures(case, side))
    ]
    if lacking:
        note = f"the {' and the '.join(lacking)}'s code lacks it"
    else:
        note = f"measured on both sides in {rounds} round(s), too few to judge"
    present = {
        side: _median([x for x in run.figures(case, side) if x is not None])
        for side in ("base", "candidate")
    }
    return MicroCase(case, "missing", rounds, present["base"], present["candidate"], note=note)


def judge_micro(run: MicroRun, rule: GateRule) -> MicroCheck:
    """Every case's status and the check's reasons (one line per failing case), as the
    table above decides."""
    level = micro_level(rule)
    effects: dict[str, FloatArray] = {}
    medians: dict[str, tuple[float | None, float | None]] = {}
    missing: dict[str, MicroCase] = {}
    for case in run.cases:
        base, cand = _paired(run, case)
        if len(base) < 2:
            missing[case] = _missing(run, case, len(base))
            continue
        effects[case] = np.log(np.asarray(cand) / np.asarray(base))
        medians[case] = (_median(base), _median(cand))
    judged = list(effects)
    p_slower = {case: float(signed_rank_p(effects[case])[0]) for case in judged}
    rejected = dict.fromkeys(judged, False)
    if judged:
        holm = holm_reject(np.array([[p_slower[c] for c in judged]]), level)[0]
        rejected = {case: bool(r) for case, r in zip(judged, holm, strict=True)}
    cases: list[MicroCase] = []
    reasons: list[str] = []
    for case in run.cases:
        if case in missing:
            cases.append(missing[case])
            continue
        e = effects[case]
        change = math.expm1(float(hodges_lehmann(e)[0]))
        lo, hi = (math.expm1(x) for x in hl_interval(e, 0.95))
        p_faster = float(signed_rank_p(-e)[0])
        p_two = min(1.0, 2 * min(p_slower[case], p_faster))
        status: CaseStatus = "pass"
        if rejected[case] and change >= rule.micro_threshold:
            status = "fail"
        elif p_two <= rule.report_alpha and abs(change) >= rule.report_threshold:
            status = "changed"
        b, c = medians[case]
        cases.append(MicroCase(case, status, e.size, b, c, change, (lo, hi), p_slower[case]))
        if status == "fail":
            reasons.append(
                f"micro-benchmark {case} {relative(change)} [{relative(lo)}, {relative(hi)}] "
                f"per call ({per_call(c)} vs {per_call(b)} over {e.size} rounds), beyond its "
                f"{relative(rule.micro_threshold)} limit (p = {p_slower[case]:.2g}, Holm "
                f"over {len(judged)} cases at {level:.2g})"
            )
    most = max((e.size for e in effects.values()), default=0)
    reachable = bool(judged) and 2.0**-most <= level / len(judged)
    return MicroCheck("fail" if reasons else "pass", tuple(cases), level, reachable, tuple(reasons))
