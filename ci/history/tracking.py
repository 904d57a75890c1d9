"""Which GitHub issue each analysed metric should have: one per regressed series and metric.

=================================================  ====================================
what the history shows for a series' metric        the issue it should have
=================================================  ====================================
a regression not reverted since                    open, listing the open regression(s)
regressions, all of them reverted by later ones    closed: "reverted by <commit>"
no regression (any more)                           closed: "no longer detected"
=================================================  ====================================

An issue is told apart by a marker derived from its series and metric (a hash, so that no
name can break out of the HTML comment it sits in); :mod:`ci.post.issues` finds the open
issue with that marker, written by the token's own account, and opens, edits or closes it.
Metrics that were not analysed this time (a scenario no longer tracked) are left alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from ci.history.detect import ChangePoint, Detection, MetricAnalysis
from ci.history.store import SeriesKey

MARKER_PREFIX = "perfci-history-regression"


def tracking_id(key: SeriesKey, metric: str) -> str:
    digest = hashlib.sha256(f"{key.name}\n{metric}".encode()).hexdigest()[:20]
    return f"{MARKER_PREFIX}:{digest}"


def marker(tracking: str) -> str:
    return f"<!-- {tracking} -->"


@dataclass(frozen=True, slots=True)
class Tracked:
    """The wanted state of one series' metric's issue."""

    id: str  # tracking_id(key, metric)
    analysis: MetricAnalysis
    state: Literal["open", "closed"]
    regressions: tuple[ChangePoint, ...]  # open: the unreverted ones; closed: the reverted
    reverted_by: str | None  # closed after a revert: the commit of the last revert

    @property
    def key(self) -> SeriesKey:
        return self.analysis.key

    @property
    def metric(self) -> str:
        return self.analysis.spec.name


def plan_issues(detection: Detection) -> list[Tracked]:
    out = []
    for a in detection.analyses:
        regressions = [cp for cp in a.change_points if cp.kind == "regression"]
        still = tuple(cp for cp in regressions if cp.reverted_by is None)
        tid = tracking_id(a.key, a.spec.name)
        if still:
            out.append(Tracked(tid, a, "open", still, None))
        elif regressions:
            out.append(Tracked(tid, a, "closed", tuple(regressions), regressions[-1].reverted_by))
        else:
            out.append(Tracked(tid, a, "closed", (), None))
    return out
