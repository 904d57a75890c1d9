"""The PR gate's decision rule: a few primary metrics, one error rate per pull request.

A pull request is judged on paired samples: one candidate/base *effect* per measurement
window (a window measures both revisions side by side), per primary metric. The rule:

=================  ==============================================================================
at look j          with the first ``looks[j]`` pairs, ``K = len(looks)`` looks in all
FAIL               some metric is Holm-rejected at ``alpha / K`` by a one-sided signed-rank test
                   (H1: candidate worse) **and** its Hodges-Lehmann estimate is at least the
                   metric's fail threshold (statistically *and* practically worse)
PASS               every metric is shown better than its fail threshold: the signed-rank test of
                   H0 "effect >= threshold" rejects at ``pass_alpha / K`` (an intersection-union
                   test: no multiplicity adjustment is needed across metrics)
CONTINUE           neither: measure more pairs, up to the last look
INCONCLUSIVE       neither at the last look (a neutral check, never a silent pass)
=================  ==============================================================================

Why this controls false alarms per PR: for identical code every effect is symmetric around
0, so each metric's one-sided p is valid; Holm keeps the chance of any rejection among the
metrics at one look below ``alpha / K`` and Bonferroni over the looks keeps it below
``alpha`` over the whole sequential run. Requiring the estimate to reach the threshold on
top only lowers that rate. The p-values are exact (the signed-rank null distribution by
dynamic programming, as scipy computes it for small samples, vectorised here so that the
simulation test can judge thousands of pull requests in a second); no resampling is
involved, so judging the same files twice gives the same verdict.

Effects are on a log scale for ratio metrics (``log(candidate / base)``, sign flipped for
metrics where higher is better, so positive is always worse) and plain differences for
absolute ones (an error rate, whose base is often 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from ci.settings.gate import GateMetric, GateRule

FloatArray = npt.NDArray[np.float64]
Decision = Literal["pass", "fail", "continue", "inconclusive"]


def metric_effects(
    metric: GateMetric, base: Sequence[float], candidate: Sequence[float]
) -> FloatArray:
    """Per-pair effects of one metric, positive = candidate worse."""
    b = np.asarray(base, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape:
        raise ValueError(f"{metric.name}: {b.size} base values but {c.size} candidate values")
    if metric.mode == "ratio":
        if np.any(b <= 0) or np.any(c <= 0):
            raise ValueError(f"{metric.name}: a ratio metric needs positive values")
        e = np.log(c / b)
    else:
        e = c - b
    out: FloatArray = e if metric.direction == "lower" else -e
    return out


class MetricJudgement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One metric at one look (stored as it is in ``verdict.json``)."""

    name: str
    pairs: int
    estimate: float  # Hodges-Lehmann estimate on the effect scale
    change: float  # the estimate as a relative change (ratio) or a difference (absolute)
    p_worse: float  # one-sided signed-rank p, H1: candidate worse
    p_within: float  # one-sided signed-rank p, H1: effect below the threshold
    rejected: bool  # Holm-rejected at this look's level
    failed: bool  # rejected and at least the threshold
    within: bool  # shown better than the threshold


class LookResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One look of the sequential rule (stored as it is in ``verdict.json``)."""

    look: int  # 0-based
    pairs: int
    decision: Decision
    level: float  # this look's family-wise level for FAIL
    metrics: tuple[MetricJudgement, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.failed)


# -- exact signed-rank p-values, vectorised ----------------------------------------------


@lru_cache(maxsize=256)
def _upper_tail(n: int) -> FloatArray:
    """``P(W+ >= w)`` for w = 0 .. n(n+1)/2 under H0 with n non-zero untied differences."""
    top = n * (n + 1) // 2
    counts = np.zeros(top + 1, dtype=np.float64)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    pmf = counts / counts.sum()
    tail: FloatArray = np.cumsum(pmf[::-1])[::-1]
    tail.setflags(write=False)
    return tail


def signed_rank_p(effects: FloatArray) -> FloatArray:
    """One-sided p of H1 "effects > 0" per row of a 2-D array (rows: independent samples).

    Zeros are dropped (Wilcoxon's method), and so are NaNs (pairs a metric leaves out);
    ties among the rest get average ranks, and the exact null distribution of the untied
    case is then used for the nearest rank sum, which scipy's exact method also does. A
    row of zeros gives p = 1.
    """
    x = np.atleast_2d(np.asarray(effects, dtype=np.float64))
    out = np.ones(x.shape[0], dtype=np.float64)
    nonzero = (x != 0) & ~np.isnan(x)
    counts = nonzero.sum(axis=1)
    for n in np.unique(counts):
        if n == 0:
            continue
        rows = np.flatnonzero(counts == n)
        sub = x[rows]
        vals = np.where(nonzero[rows], sub, np.nan)
        # Compact the non-zero entries to the left, keeping each row's own values.
        order = np.argsort(np.isnan(vals), axis=1, kind="stable")
        vals = np.take_along_axis(vals, order, axis=1)[:, :n]
        absv = np.abs(vals)
        ranks = _average_ranks(absv)
        w_plus = np.where(vals > 0, ranks, 0.0).sum(axis=1)
        tail = _upper_tail(int(n))
        idx = np.clip(np.ceil(w_plus - 1e-9).astype(np.int64), 0, tail.size - 1)
        out[rows] = tail[idx]
    return out


def _average_ranks(a: FloatArray) -> FloatArray:
    """Ranks 1..n along axis 1, ties sharing their average rank."""
    order = np.argsort(a, axis=1, kind="stable")
    ranks = np.empty_like(a)
    n = a.shape[1]
    np.put_along_axis(ranks, order, np.arange(1, n + 1, dtype=np.float64)[np.newaxis, :], axis=1)
    sorted_a = np.take_along_axis(a, order, axis=1)
    tied = np.any(sorted_a[:, 1:] == sorted_a[:, :-1], axis=1)
    for r in np.flatnonzero(tied):  # rare with measured data: do it the slow, exact way
        vals = a[r]
        uniq, inv = np.unique(vals, return_inverse=True)
        sums = np.bincount(inv, weights=ranks[r], minlength=uniq.size)
        cnts = np.bincount(inv, minlength=uniq.size)
        ranks[r] = (sums / cnts)[inv]
    return ranks


def hodges_lehmann(effects: FloatArray) -> FloatArray:
    """Pseudo-median (median of the Walsh averages) of each row; NaNs (pairs a metric
    leaves out) take no part, and a row of NaNs gives NaN."""
    x = np.atleast_2d(np.asarray(effects, dtype=np.float64))
    i, j = np.triu_indices(x.shape[1])
    walsh = (x[:, i] + x[:, j]) * 0.5
    if not np.isnan(x).any():
        out: FloatArray = np.median(walsh, axis=1)
        return out
    out = np.full(x.shape[0], np.nan)
    for r in range(x.shape[0]):
        kept = walsh[r][~np.isnan(walsh[r])]
        if kept.size:
            out[r] = float(np.median(kept))
    return out


# -- the rule ----------------------------------------------------------------------------


def holm_reject(p: FloatArray, level: float) -> npt.NDArray[np.bool_]:
    """Holm's step-down rejections per row of ``p`` (columns: metrics) at ``level``."""
    p = np.atleast_2d(p)
    m = p.shape[1]
    order = np.argsort(p, axis=1)
    sorted_p = np.take_along_axis(p, order, axis=1)
    limits = level / (m - np.arange(m))
    ok = sorted_p <= limits[np.newaxis, :]
    # step-down: reject the first k hypotheses where every one up to k passed its limit
    keep = np.cumprod(ok, axis=1).astype(bool)
    out = np.zeros_like(keep)
    np.put_along_axis(out, order, keep, axis=1)
    return out


def judge_look(effects: Mapping[str, FloatArray], rule: GateRule, look: int) -> list[LookResult]:
    """Apply look ``look`` of ``rule`` to many pull requests at once.

    ``effects[name]`` is 2-D (rows: pull requests, columns: pairs, at least
    ``rule.looks[look]`` of them) for each of ``rule.metrics``; only the first
    ``rule.looks[look]`` columns are used. A NaN is a pair the metric leaves out (a window
    that cannot measure it fairly): that metric is judged on its other pairs, and each
    metric's p stays valid on its own count, so Holm across them holds as before.
    """
    metrics = rule.metrics
    n = rule.looks[look]
    k = len(rule.looks)
    level = rule.alpha / k
    cols = []
    for m in metrics:
        e = np.atleast_2d(np.asarray(effects[m.name], dtype=np.float64))
        if e.shape[1] < n:
            raise ValueError(f"{m.name}: look {look} needs {n} pairs, got {e.shape[1]}")
        cols.append(e[:, :n])
    stacked = np.stack(cols, axis=1)  # (prs, metrics, pairs)
    prs = stacked.shape[0]
    p_worse = np.stack([signed_rank_p(stacked[:, i]) for i in range(len(metrics))], axis=1)
    p_within = np.stack(
        [
            signed_rank_p(np.asarray(m.margin - stacked[:, i], dtype=np.float64))
            for i, m in enumerate(metrics)
        ],
        axis=1,
    )
    est = np.stack([hodges_lehmann(stacked[:, i]) for i in range(len(metrics))], axis=1)
    margins = np.array([m.margin for m in metrics])
    pairs = (~np.isnan(stacked)).sum(axis=2)  # (prs, metrics)
    rejected = holm_reject(p_worse, level)
    failed = rejected & (est >= margins[np.newaxis, :])
    within = p_within <= rule.pass_alpha / k
    out = []
    for r in range(prs):
        if failed[r].any():
            decision: Decision = "fail"
        elif within[r].all():
            decision = "pass"
        elif look == k - 1:
            decision = "inconclusive"
        else:
            decision = "continue"
        out.append(
            LookResult(
                look,
                n,
                decision,
                level,
                tuple(
                    MetricJudgement(
                        m.name,
                        int(pairs[r, i]),
                        float(est[r, i]),
                        _change(m, float(est[r, i])),
                        float(p_worse[r, i]),
                        float(p_within[r, i]),
                        bool(rejected[r, i]),
                        bool(failed[r, i]),
                        bool(within[r, i]),
                    )
                    for i, m in enumerate(metrics)
                ),
            )
        )
    return out


def _change(m: GateMetric, estimate: float) -> float:
    if m.mode == "absolute":
        return estimate if m.direction == "lower" else -estimate
    ratio = math.exp(estimate if m.direction == "lower" else -estimate)
    return ratio - 1.0


def judge_sequential(effects: Mapping[str, FloatArray], rule: GateRule) -> list[LookResult]:
    """Every look one pull request reached, in order; the last one holds its decision.

    ``effects[name]`` is 1-D with the pairs measured so far. Looks beyond the pairs
    available are not taken (the caller measures more and calls again).
    """
    metrics = rule.metrics
    available = min(np.asarray(effects[m.name]).size for m in metrics)
    results = []
    for look, n in enumerate(rule.looks):
        if n > available:
            break
        (res,) = judge_look(
            {m.name: np.asarray(effects[m.name])[np.newaxis, :] for m in metrics}, rule, look
        )
        results.append(res)
        if res.decision != "continue":
            break
    return results


def simulate(rule: GateRule, effects: Mapping[str, FloatArray]) -> dict[Decision, float]:
    """Decision frequencies of the sequential rule over many simulated pull requests.

    ``effects[name]`` is 2-D (rows: pull requests, columns: at least ``rule.looks[-1]``
    pairs). Returns the share of pull requests ending in each decision.
    """
    prs = next(iter(effects.values())).shape[0]
    final: list[Decision | None] = [None] * prs
    open_rows: npt.NDArray[np.int64] = np.arange(prs, dtype=np.int64)
    for look in range(len(rule.looks)):
        if open_rows.size == 0:
            break
        results = judge_look({k: v[open_rows] for k, v in effects.items()}, rule, look)
        still = []
        for row, res in zip(open_rows, results, strict=True):
            if res.decision == "continue":
                still.append(row)
            else:
                final[row] = res.decision
        open_rows = np.asarray(still, dtype=np.int64)
    counts: dict[Decision, float] = {"pass": 0.0, "fail": 0.0, "inconclusive": 0.0}
    for d in final:
        assert d is not None, "every pull request ends at the last look"
        counts[d] += 1.0 / prs
    return counts
