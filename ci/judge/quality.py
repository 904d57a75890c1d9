"""The recall check's decision: a threshold on the drop, and a paired test by query.

Each side answered the same fixed sample and was scored against its own exact top-k
(:mod:`ci.experiments.gate.quality` says why its own). The figures are not exact
properties of the code: each side builds its own HNSW graph, and pgvector draws every
node's level at random, so two builds of identical code answer some queries differently.
That difference is shared by every query of a run (one graph is worse than the other), so
more queries do not average it out. Hence a recall drop fails only when it is both beyond
the threshold and clear of that noise: a one-sided z-test of the mean per-query recall
difference, whose SE is the paired SE over the queries and ``gate.recall_build_sd`` (the
measured SD between two builds of identical code) in quadrature, rejects "no drop" at
``alpha * QUALITY_ALPHA_SHARE`` (so the check adds at most a quarter of ``gate.alpha`` to a
pull request's false-FAIL rate).

========================================================  ========
candidate against base                                    status
========================================================  ========
recall@k falls by more than ``gate.recall_drop``, with     fail
the test's p at most its level
the share of short answers rises by more than              fail
``gate.short_results_rise``
neither                                                   pass
========================================================  ========

A verdict stored without per-query recalls is judged on the threshold alone.

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
QUALITY_ALPHA_SHARE = 0.25  # the recall test's level, as a share of gate.alpha


@dataclass(frozen=True, slots=True)
class QualityCheck:
    status: QualityStatus
    recall_change: float  # candidate minus base, in recall (0..1)
    short_change: float  # candidate minus base, in share of queries
    reasons: tuple[str, ...]
    p_drop: float | None = None  # the paired test's one-sided p (None: no per-query recalls)
    interval: tuple[float, float] | None = None  # 95 % interval of recall_change


def paired_drop(run: QualityRun, build_sd: float = 0.0) -> tuple[float, tuple[float, float]] | None:
    """One-sided p of "the candidate's recall is lower", and the change's 95 % interval.

    The change's spread is the paired standard error over the queries and ``build_sd``, the
    SD of the recall difference between two HNSW builds of the same code (a graph property
    shared by every query, which no number of queries averages out), added in quadrature.
    None when the run has no per-query recalls (an older verdict) or they do not pair.
    """
    b, c = run.base.recalls, run.candidate.recalls
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
    level = rule.alpha * QUALITY_ALPHA_SHARE
    clear = tested is None or tested[0] <= level
    if -recall_change > rule.recall_drop and clear:
        test = "" if tested is None else f"; beyond build noise, p = {tested[0]:.2g}"
        reasons.append(
            f"recall@{run.k} {cand.recall_at_k:.3f} against the base's {base.recall_at_k:.3f} "
            f"({recall_change * 100:+.1f} pp, beyond the {rule.recall_drop * 100:.1f} pp "
            f"allowed; filtered {cand.recall_filtered:.3f} vs {base.recall_filtered:.3f}, "
            f"unfiltered {cand.recall_unfiltered:.3f} vs {base.recall_unfiltered:.3f}{test})"
        )
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
    )
