"""The recall check's decision: no pairs, no statistics, a threshold on two exact figures.

Each side answered the same fixed sample and was scored against its own exact top-k
(:mod:`ci.experiments.gate.quality` says why its own), so the figures are deterministic up
to the sides' own nondeterminism: a drop is a property of the code, not noise.

========================================================  ========
candidate against base                                    status
========================================================  ========
recall@k falls by more than ``gate.recall_drop``           fail
the share of short answers rises by more than              fail
``gate.short_results_rise``
neither                                                   pass
========================================================  ========

A failing check whose windows show the candidate faster (a latency or CPU metric lower
with its whole interval below zero) is named "faster but less accurate": the speed was
bought with answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ci.judge.duet import ReportMetric
from ci.results.quality import QualityRun
from ci.settings.gate import GateRule

QualityStatus = Literal["pass", "fail"]
SPEED_METRICS = ("cpu", "latency")  # name prefixes of the metrics a speed-up shows in


@dataclass(frozen=True, slots=True)
class QualityCheck:
    status: QualityStatus
    recall_change: float  # candidate minus base, in recall (0..1)
    short_change: float  # candidate minus base, in share of queries
    reasons: tuple[str, ...]


def faster(metrics: Sequence[ReportMetric]) -> tuple[str, ...]:
    """The speed metrics whose whole interval shows the candidate lower (faster)."""
    return tuple(m.name for m in metrics if m.name.startswith(SPEED_METRICS) and m.ci_high < 0)


def judge_quality(run: QualityRun, rule: GateRule, faster_in: Sequence[str] = ()) -> QualityCheck:
    """The check's status and its reasons (one line each), as the table above decides."""
    base, cand = run.base, run.candidate
    recall_change = cand.recall_at_k - base.recall_at_k
    short_change = cand.short_share - base.short_share
    reasons = []
    if -recall_change > rule.recall_drop:
        reasons.append(
            f"recall@{run.k} {cand.recall_at_k:.3f} against the base's {base.recall_at_k:.3f} "
            f"({recall_change * 100:+.1f} pp, beyond the {rule.recall_drop * 100:.1f} pp "
            f"allowed; filtered {cand.recall_filtered:.3f} vs {base.recall_filtered:.3f}, "
            f"unfiltered {cand.recall_unfiltered:.3f} vs {base.recall_unfiltered:.3f})"
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
    return QualityCheck("fail" if reasons else "pass", recall_change, short_change, tuple(reasons))
