"""The plain difference of one run against a stored baseline: no statistics, no verdict.

One run per side cannot tell a change from run-to-run noise; the PR gate (``perfci gate``)
is what decides. This lists what moved, per scenario and metric, for a person to read.
Runs of different load profiles measure different loads, so they are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.errors import MetadataMismatch
from ci.judge.metrics import EXTRACTORS
from ci.results import RunMeta, RunResults


@dataclass(frozen=True, slots=True)
class MetricDiff:
    scenario: str
    metric: str
    base: float | None  # None: that side does not report the figure
    candidate: float | None

    @property
    def difference(self) -> float | None:
        if self.base is None or self.candidate is None:
            return None
        return self.candidate - self.base

    @property
    def change(self) -> float | None:
        """``candidate / base - 1``; None without both figures or with a base of 0."""
        if self.base is None or self.candidate is None or self.base == 0:
            return None
        return self.candidate / self.base - 1


@dataclass(frozen=True, slots=True)
class RunDiff:
    base: RunMeta
    candidate: RunMeta
    rows: tuple[MetricDiff, ...]  # scenarios both runs have, in the candidate's order
    unmatched: tuple[str, ...]  # scenarios only one of the runs has


def diff_runs(base: RunResults, candidate: RunResults) -> RunDiff:
    """Every metric either side reports, per scenario both runs have."""
    if base.run.profile != candidate.run.profile:
        raise MetadataMismatch(
            f"the baseline is a run of profile {base.run.profile!r}, this run of "
            f"{candidate.run.profile!r}: record a baseline of the same profile "
            f"(perfci baseline --profile {candidate.run.profile})"
        )
    shared = [name for name in candidate.scenario_names if name in base.scenario_names]
    rows = []
    for name in shared:
        b, c = base.scenario(name), candidate.scenario(name)
        for metric, extract in EXTRACTORS.items():
            row = MetricDiff(name, metric, extract(b), extract(c))
            if row.base is not None or row.candidate is not None:
                rows.append(row)
    names = (*base.scenario_names, *candidate.scenario_names)
    unmatched = tuple(dict.fromkeys(n for n in names if n not in shared))
    return RunDiff(base.run, candidate.run, tuple(rows), unmatched)
