"""Judging a duet file: per-window effects of each metric, the gate's rule, what else changed.

Pure functions on a :class:`~ci.results.duet.DuetRun` (from ``windows.json``) and the
gate's rule (:class:`~ci.settings.gate.GateRule`); no resampling anywhere (the p-values and
intervals are exact signed-rank ones), so judging the same file twice gives the same verdict.

======================  =====================================================================
step                    rule
======================  =====================================================================
windows                 warm-up windows are dropped; each remaining window is one pair
value per side          each metric's figure for each side of a window
                        (:mod:`ci.judge.window_metrics`)
left-out pairs          ``rss_kb_per_1k_requests`` leaves out each window marked
                        ``restarted`` (its processes' first: their RSS still settles, and
                        the pair's difference varies ~5x more than in later windows); the
                        rule judges it on its other pairs (:func:`ci.judge.gate.judge_look`)
not measured            a primary metric some window has no value for (a version 1 file has
                        no RSS and no slow counts) is report-only, and the verdict says why
gated or report-only    a primary percentile is gated only if *every* window has at least
                        ``min_tail_samples`` samples above it on both sides; otherwise it is
                        report-only, and the verdict says why
decision                :func:`ci.judge.gate.judge_sequential` on the gated metrics
report-only "changed"   two-sided exact signed-rank p <= ``report_alpha`` and the
                        Hodges-Lehmann change beyond ``report_threshold``
data layer              each side built its database once: ``index_build_s`` and
                        ``time_to_ready_s`` are one pair, reported without an interval and
                        "changed" beyond ``SETUP_THRESHOLD`` (+50 %) and ``SETUP_MIN_S``
======================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from ci.errors import ComparisonError
from ci.judge.gate import (
    Decision,
    FloatArray,
    LookResult,
    _upper_tail,
    hodges_lehmann,
    judge_sequential,
    metric_effects,
    signed_rank_p,
)
from ci.judge.window_metrics import (
    OPTIONAL_METRICS,
    PERCENTILES,
    judged,
    paired_values,
    tail_samples,
)
from ci.results.duet import DuetRun, DuetWindow
from ci.settings.gate import DEFAULT_GATE_METRICS, GateMetric, GateRule

#: Report-only metrics compared as differences, with their threshold for "changed": a primary
#: metric's default fail threshold, the tail share's 1 pp.
_ABSOLUTE_REPORT = {
    "slow_share": 0.01,
    **{m.name: m.fail_threshold for m in DEFAULT_GATE_METRICS if m.mode == "absolute"},
}
#: A side's data layer "changed" when it takes this much longer (relative) than the base's...
SETUP_THRESHOLD = 0.5
#: ...and at least this many seconds more (a 0.1-s index build doubling is noise).
SETUP_MIN_S = 1.0


class Demotion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A primary metric that could not be gated in this run, and why."""

    name: str
    reason: str


class ReportMetric(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A report-only metric (or a demoted primary one): its change and whether it is clear."""

    name: str
    pairs: int
    mode: str  # ratio | absolute
    change: float  # relative change (ratio) or difference (absolute), candidate vs base
    ci_low: float  # exact 95 % interval of the change (Walsh averages)
    ci_high: float
    p_two_sided: float
    changed: bool
    base_median: float
    candidate_median: float
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DuetJudgement:
    looks: tuple[LookResult, ...]  # every look reached; the last holds the decision
    gated: tuple[GateMetric, ...]
    demoted: tuple[Demotion, ...]
    report_only: tuple[ReportMetric, ...]
    primary_report: tuple[ReportMetric, ...]  # the gated metrics' changes, for the table
    windows: int  # measured (non-warm-up) windows judged

    @property
    def decision(self) -> Decision:
        """pass | fail | inconclusive, or continue (more windows are needed)."""
        return self.looks[-1].decision if self.looks else "continue"

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.looks[-1].reasons if self.looks else ()


def _gated(
    windows: Sequence[DuetWindow], rule: GateRule
) -> tuple[list[GateMetric], list[Demotion]]:
    gated: list[GateMetric] = []
    demoted: list[Demotion] = []
    for m in rule.metrics:
        if m.name in PERCENTILES and windows:
            fewest = min(
                min(tail_samples(m.name, w.base) or 0, tail_samples(m.name, w.candidate) or 0)
                for w in windows
            )
            if fewest < rule.min_tail_samples:
                q = PERCENTILES[m.name]
                demoted.append(
                    Demotion(
                        m.name,
                        f"report-only: a window had {fewest} samples above p{q}, fewer than "
                        f"gate.min_tail_samples = {rule.min_tail_samples}",
                    )
                )
                continue
        values = paired_values(windows, m.name, rule.tail_prior) if windows else None
        if m.name in OPTIONAL_METRICS and windows and values is None:
            demoted.append(
                Demotion(m.name, "report-only: not measured in every window of this run")
            )
            continue
        if m.mode == "ratio" and values is not None and min(min(values[0]), min(values[1])) <= 0:
            demoted.append(
                Demotion(
                    m.name,
                    "report-only: a side read 0 in a window, which a ratio cannot compare "
                    '(mode = "absolute" can)',
                )
            )
            continue
        if windows and sum(judged(m.name, w) for w in windows) < 2:
            demoted.append(
                Demotion(m.name, "report-only: fewer than 2 windows after their services' first")
            )
            continue
        gated.append(m)
    return gated, demoted


def judge_duet(run: DuetRun, rule: GateRule) -> DuetJudgement:
    """Apply ``rule`` to the measured windows of ``run`` (every look they reach)."""
    windows = run.measured
    gated, demoted = _gated(windows, rule)
    if not gated:
        raise ComparisonError(
            "no primary metric can be gated: " + "; ".join(f"{d.name}: {d.reason}" for d in demoted)
        )
    if len(windows) < 2:  # nothing to judge yet (the time budget ran out early)
        return DuetJudgement((), tuple(gated), tuple(demoted), (), (), len(windows))
    effects: dict[str, FloatArray] = {}
    primary_report: list[ReportMetric] = []
    for m in gated:
        values = paired_values(windows, m.name, rule.tail_prior)
        if values is None:
            raise ComparisonError(
                f"primary metric {m.name}: some window has no value for it "
                "(no CPU samples or no successful search); the windows cannot be judged"
            )
        effects[m.name] = np.where(
            [judged(m.name, w) for w in windows], metric_effects(m, *values), np.nan
        )
        primary_report.append(
            _report(
                m.name, m.mode, judged_values(windows, m.name, values), rule, m.fail_threshold, None
            )
        )
    looks = judge_sequential(effects, msgspec.structs.replace(rule, metrics=tuple(gated)))
    report: list[ReportMetric] = []
    demoted_names = {d.name: d.reason for d in demoted}
    for name in (*demoted_names, *rule.report_only_names):
        values = paired_values(windows, name, rule.tail_prior)
        if values is None:
            continue
        values = judged_values(windows, name, values)
        if len(values[0]) < 2:
            continue
        mode = "absolute" if name in _ABSOLUTE_REPORT else "ratio"
        threshold = _ABSOLUTE_REPORT.get(name, rule.report_threshold)
        note = demoted_names.get(name) or _tail_note(name, windows, rule)
        report.append(_report(name, mode, values, rule, threshold, note))
    report.extend(setup_report(run))
    return DuetJudgement(
        looks=tuple(looks),
        gated=tuple(gated),
        demoted=tuple(demoted),
        report_only=tuple(report),
        primary_report=tuple(primary_report),
        windows=len(windows),
    )


def setup_report(run: DuetRun) -> list[ReportMetric]:
    """Index build time and time to ready of the two sides' own data layers (one pair)."""
    if run.setup is None or not {"base", "candidate"} <= set(run.setup):
        return []
    base, cand = run.setup["base"], run.setup["candidate"]
    out = []
    for name, b, c in (
        ("index_build_s", base.index_s, cand.index_s),
        ("time_to_ready_s", base.ready_s, cand.ready_s),
    ):
        change = c / b - 1 if b > 0 else 0.0
        out.append(
            ReportMetric(
                name=name,
                pairs=1,
                mode="ratio",
                change=change,
                ci_low=change,
                ci_high=change,
                p_two_sided=1.0,
                changed=change > SETUP_THRESHOLD and c - b > SETUP_MIN_S,
                base_median=b,
                candidate_median=c,
                note=(
                    f"one build per side (index {base.index} vs {cand.index}): no interval; "
                    f"flagged beyond +{SETUP_THRESHOLD:.0%} and +{SETUP_MIN_S:g} s"
                ),
            )
        )
    return out


def _tail_note(name: str, windows: Sequence[DuetWindow], rule: GateRule) -> str | None:
    if name not in PERCENTILES or not windows:
        return None
    fewest = min(
        min(tail_samples(name, w.base) or 0, tail_samples(name, w.candidate) or 0) for w in windows
    )
    if fewest >= rule.min_tail_samples:
        return None
    return f"{fewest} samples above p{PERCENTILES[name]} in the sparsest window: indicative only"


def judged_values(
    windows: Sequence[DuetWindow], metric: str, values: tuple[list[float], list[float]]
) -> tuple[list[float], list[float]]:
    """``values`` (one pair per window) without the pairs ``metric`` leaves out."""
    keep = [judged(metric, w) for w in windows]
    return (
        [v for v, k in zip(values[0], keep, strict=True) if k],
        [v for v, k in zip(values[1], keep, strict=True) if k],
    )


def _report(
    name: str,
    mode: str,
    values: tuple[list[float], list[float]],
    rule: GateRule,
    threshold: float,
    note: str | None,
) -> ReportMetric:
    base = np.asarray(values[0], dtype=np.float64)
    cand = np.asarray(values[1], dtype=np.float64)
    e: FloatArray
    if mode == "ratio" and np.all(base > 0) and np.all(cand > 0):
        e = np.asarray(np.log(cand / base), dtype=np.float64)
    else:
        mode = "absolute"  # a zero figure (no errors, say) compares as a difference
        e = np.asarray(cand - base, dtype=np.float64)
    est = float(hodges_lehmann(e)[0])
    lo, hi = hl_interval(e, 0.95)
    p_up = float(signed_rank_p(e)[0])
    p_down = float(signed_rank_p(-e)[0])
    p_two = min(1.0, 2 * min(p_up, p_down))

    def change(x: float) -> float:
        return math.expm1(x) if mode == "ratio" else x

    delta = change(est)
    changed = p_two <= rule.report_alpha and abs(delta) >= threshold
    return ReportMetric(
        name=name,
        pairs=int(e.size),
        mode=mode,
        change=delta,
        ci_low=change(lo),
        ci_high=change(hi),
        p_two_sided=p_two,
        changed=bool(changed),
        base_median=float(np.median(base)),
        candidate_median=float(np.median(cand)),
        note=note,
    )


def hl_interval(effects: FloatArray, confidence: float) -> tuple[float, float]:
    """The exact distribution-free interval of the pseudo-median (Walsh averages, Tukey).

    With n effects and M = n(n+1)/2 Walsh averages sorted, the interval is
    ``[W(k), W(M-k+1)]`` for the largest k with ``P(T+ <= k-1) <= (1 - confidence) / 2``
    under the signed-rank null. Too few effects for that level give the full range.
    """
    x = np.asarray(effects, dtype=np.float64).ravel()
    n = x.size
    i, j = np.triu_indices(n)
    walsh = np.sort((x[i] + x[j]) * 0.5)
    m = walsh.size
    tail = _upper_tail(n)  # P(T+ >= w); by symmetry P(T+ <= w) = P(T+ >= M - w)
    half = (1 - confidence) / 2
    k = 0
    for cand in range(1, m // 2 + 1):
        # P(T+ <= cand - 1) = P(T+ >= m - cand + 1)
        if tail[m - cand + 1] <= half:
            k = cand
        else:
            break
    if k == 0:
        return float(walsh[0]), float(walsh[-1])
    return float(walsh[k - 1]), float(walsh[m - k])
