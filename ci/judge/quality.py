"""The recall check's decision: a threshold on the drop, and a paired test by query, on each
side's own graph and on the base's graph.

Each side answered the same fixed sample and was scored against its own exact top-k
(:mod:`ci.experiments.gate.quality` says why its own). The figures are not exact
properties of the code: each side builds its own HNSW graph, and pgvector draws every
node's level at random, so two builds of identical code answer some queries differently.
That difference is shared by every query of a run (one graph is worse than the other), so
more queries do not average it out. Hence a recall drop fails only when it is both beyond
the threshold and clear of that noise: a one-sided z-test of the mean per-query recall
difference, whose SE is the paired SE over the queries and ``gate.recall_build_sd`` (the
measured SD between two builds of identical code) in quadrature, rejects "no drop" at
half of ``alpha * QUALITY_ALPHA_SHARE``, and so does the base's-graph test below (so the
two add at most a quarter of ``gate.alpha`` to a pull request's false-FAIL rate).

When the candidate's code was also measured on the base's graph (``candidate_on_base``:
its searches on the base's database, scored against the base's exact top-k), that is
paired by query with the base's code measured the same way at the same moment
(``base_on_base``; in an older verdict, the base's own answers). One graph and identical
code answer identically, so this test has no build noise (its SE is the paired SE alone)
and a query-time change (``ef_search``, iterative scans, a query bug) shows in full; a
change to the index build shows in the own-graph test only.

========================================================  ========
candidate against base                                    status
========================================================  ========
recall@k falls by more than ``gate.recall_drop``, with     fail
the test's p at most its level
recall@k on the base's graph falls by more than            fail
``gate.recall_drop``, with its test's p at most the same
level
the share of short answers rises by more than              fail
``gate.short_results_rise``
none of these                                             pass
========================================================  ========

A verdict stored without per-query recalls is judged on the threshold alone; one stored
without the base's-graph figures is judged on the sides' own.

A failing check whose windows show the candidate faster (a latency or CPU metric lower
with its whole interval below zero) is named "faster but less accurate": the speed was
bought with answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from ci.judge.duet import ReportMetric
from ci.results.quality import QualityRun
from ci.settings.gate import GateRule

QualityStatus = Literal["pass", "fail"]
SPEED_METRICS = ("cpu", "latency")  # name prefixes of the metrics a speed-up shows in
QUALITY_ALPHA_SHARE = 0.25  # the recall tests' level together, as a share of gate.alpha


@dataclass(frozen=True, slots=True)
class QualityCheck:
    status: QualityStatus
    recall_change: float  # candidate minus base, in recall (0..1)
    short_change: float  # candidate minus base, in share of queries
    reasons: tuple[str, ...]
    p_drop: float | None = None  # the paired test's one-sided p (None: no per-query recalls)
    interval: tuple[float, float] | None = None  # 95 % interval of recall_change
    # the candidate's code on the base's graph minus the base (None: not measured)
    recall_change_on_base: float | None = None
    p_drop_on_base: float | None = None  # its paired test's one-sided p (no build noise)
    interval_on_base: tuple[float, float] | None = None  # 95 % interval of that change


Tested = tuple[float, tuple[float, float]]  # one-sided p of a drop, the change's 95 % interval


def recall_test_level(rule: GateRule) -> float:
    """The level of each of the two recall tests: their share of ``rule.alpha``, halved
    (Bonferroni over the own-graph and the base's-graph test)."""
    return rule.alpha * QUALITY_ALPHA_SHARE / 2


def paired_drop(run: QualityRun, build_sd: float = 0.0) -> Tested | None:
    """One-sided p of "the candidate's recall is lower", and the change's 95 % interval.

    The change's spread is the paired standard error over the queries and ``build_sd``, the
    SD of the recall difference between two HNSW builds of the same code (a graph property
    shared by every query, which no number of queries averages out), added in quadrature.
    None when the run has no per-query recalls (an older verdict) or they do not pair.
    """
    return paired_change(run.base.recalls, run.candidate.recalls, build_sd)


def paired_drop_on_base(run: QualityRun) -> Tested | None:
    """:func:`paired_drop` of the candidate's code on the base's graph against the base's
    code there: no build noise (one graph). None when that was not measured."""
    on_base = run.candidate_on_base
    if on_base is None:
        return None
    return paired_change(run.on_base_reference().recalls, on_base.recalls)


def paired_change(
    b: Sequence[float | None], c: Sequence[float | None], build_sd: float = 0.0
) -> Tested | None:
    """:func:`paired_drop` of per-query recalls ``c`` against ``b`` (a None is left out with
    its pair); None when they do not pair or fewer than two pairs are left."""
    if not b or len(b) != len(c):
        return None
    d = np.array([y - x for x, y in zip(b, c, strict=True) if x is not None and y is not None])
    if d.size < 2:
        return None
    mean = float(d.mean())
    se = math.hypot(float(d.std(ddof=1)) / math.sqrt(d.size), build_sd)
    if se == 0:
        return (1.0 if mean >= 0 else 0.0), (mean, mean)
    p = float(stats.norm.cdf(mean / se))  # H1: mean change < 0
    half = float(stats.norm.ppf(0.975)) * se
    return p, (mean - half, mean + half)


def faster(metrics: Sequence[ReportMetric]) -> tuple[str, ...]:
    """The speed metrics whose whole interval shows the candidate lower (faster)."""
    return tuple(m.name for m in metrics if m.name.startswith(SPEED_METRICS) and m.ci_high < 0)


def judge_quality(run: QualityRun, rule: GateRule, faster_in: Sequence[str] = ()) -> QualityCheck:
    """The check's status and its reasons (one line each), as the table above decides."""
    base, cand = run.base, run.candidate
    recall_change = cand.recall_at_k - base.recall_at_k
    short_change = cand.short_share - base.short_share
    reasons = []
    tested = paired_drop(run, rule.recall_build_sd)
    level = recall_test_level(rule)
    clear = tested is None or tested[0] <= level
    if -recall_change > rule.recall_drop and clear:
        test = "" if tested is None else f"; beyond build noise, p = {tested[0]:.2g}"
        reasons.append(
            f"recall@{run.k} {cand.recall_at_k:.3f} against the base's {base.recall_at_k:.3f} "
            f"({recall_change * 100:+.1f} pp, beyond the {rule.recall_drop * 100:.1f} pp "
            f"allowed; filtered {cand.recall_filtered:.3f} vs {base.recall_filtered:.3f}, "
            f"unfiltered {cand.recall_unfiltered:.3f} vs {base.recall_unfiltered:.3f}{test})"
        )
    on_base = _on_base(run, rule, level)
    if on_base.reason is not None:
        reasons.append(on_base.reason)
    if short_change > rule.short_results_rise:
        reasons.append(
            f"{cand.short_share * 100:.1f} % of queries answered with fewer hits than the "
            f"exact top-{run.k} against the base's {base.short_share * 100:.1f} % "
            f"(beyond the {rule.short_results_rise * 100:.1f} pp allowed)"
        )
    errors = cand.failed > base.failed  # answers lost to errors, not to a worse search
    if reasons and errors:
        reasons[0] += f"; {cand.failed} of {cand.queries} searches failed and count as empty"
    elif reasons and faster_in:
        reasons[0] = f"faster but less accurate ({', '.join(faster_in)} lower): " + reasons[0]
    return QualityCheck(
        "fail" if reasons else "pass",
        recall_change,
        short_change,
        tuple(reasons),
        p_drop=None if tested is None else tested[0],
        interval=None if tested is None else tested[1],
        recall_change_on_base=on_base.change,
        p_drop_on_base=None if on_base.tested is None else on_base.tested[0],
        interval_on_base=None if on_base.tested is None else on_base.tested[1],
    )


@dataclass(frozen=True, slots=True)
class OnBase:
    """The base's-graph test: the change, its test, and the reason it fails (None: it
    passes, or was not measured)."""

    change: float | None = None
    tested: Tested | None = None
    reason: str | None = None


def _on_base(run: QualityRun, rule: GateRule, level: float) -> OnBase:
    """The candidate's code on the base's graph against the base, paired by query with no
    build noise; it fails beyond ``rule.recall_drop`` with the test's p at most ``level``."""
    on, base = run.candidate_on_base, run.on_base_reference()
    if on is None:
        return OnBase()
    tested = paired_drop_on_base(run)
    change = change_on_base(run, tested)
    if -change <= rule.recall_drop or (tested is not None and tested[0] > level):
        return OnBase(change, tested)
    test = "" if tested is None else f" [{tested[1][0] * 100:+.1f}, {tested[1][1] * 100:+.1f}]"
    p = "" if tested is None else f", p = {tested[0]:.2g}"
    failed = f"; {on.failed} of its searches failed and are left out" if on.failed else ""
    return OnBase(
        change,
        tested,
        f"recall@{run.k} on the base's graph {on.recall_at_k:.3f} against the base's "
        f"{base.recall_at_k:.3f} ({change * 100:+.1f} pp{test}, beyond the "
        f"{rule.recall_drop * 100:.1f} pp allowed; the candidate's code searching the base's "
        f"index, no build noise{p}{failed})",
    )


def change_on_base(run: QualityRun, tested: Tested | None) -> float:
    """The candidate's code on the base's graph minus the base's code there: the paired
    mean over the queries both answered (its ``tested`` interval's centre), else the plain
    difference."""
    assert run.candidate_on_base is not None, "no figures on the base's graph"
    if tested is None:
        return run.candidate_on_base.recall_at_k - run.on_base_reference().recall_at_k
    lo, hi = tested[1]
    return (lo + hi) / 2
