"""The gate's report folder: every file name in it, and ``pr.json``.

=====================  ======================================================================
file                   what, written by
=====================  ======================================================================
``pr.json``            which pull request, which commits, whether it merged
                       (:class:`PrRecord`; ``perfci gate --pr``, before anything of the pull
                       request runs)
``verdict.json``       the verdict (:mod:`ci.judge.gate_verdict`), written first, so that a
                       rendering problem never loses it
``windows.json``       the windows as they were measured (``ci.experiments.gate.sequential``)
``windows/``           each window's raw k6 output
``summary.md``         the verdict as Markdown (the job summary)
``report.html``        the verdict's tables and the windows' plot
``shapes/<side>/``     each side's shape scenarios (results.json, report.html)
``profiles/``          on a FAIL: the collapsed stacks py-spy drew from each side's
                       workers during the windows (``<side>.cpu.<pid>.txt``), each side's
                       flame graph over all its processes (``base.svg``,
                       ``candidate.svg``) and ``flame-diff.svg``, the candidate against
                       the base (``ci.experiments.gate.flames``)
=====================  ======================================================================

Nothing else spells these names: the gate, ``--rejudge``, the poster and the workflow ask
:class:`GateFolder`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

PR_VERSION = 1
MAX_REASON = 500
PrOutcome = Literal["tested", "cannot-merge", "superseded"]
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class GateFolder:
    """One report folder of ``perfci gate``."""

    root: Path

    @property
    def pr(self) -> Path:
        return self.root / "pr.json"

    @property
    def verdict(self) -> Path:
        return self.root / "verdict.json"

    @property
    def windows(self) -> Path:
        return self.root / "windows.json"

    @property
    def window_logs(self) -> Path:
        return self.root / "windows"

    @property
    def summary(self) -> Path:
        return self.root / "summary.md"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def shapes(self) -> Path:
        return self.root / "shapes"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def flame_diff(self) -> Path:
        return self.profiles / "flame-diff.svg"


class PrRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``pr.json``: which pull request the folder measured, and whether it could."""

    version: int = PR_VERSION
    pr: int
    head_sha: str  # the pull request's head, as the triggering event named it
    run_id: int
    run_attempt: int
    outcome: PrOutcome
    merge_sha: str | None = None  # the candidate (when tested)
    base_sha: str | None = None  # the merge commit's first parent (when tested)
    reason: str | None = None  # why it was not tested

    def __post_init__(self) -> None:
        if self.version != PR_VERSION:
            raise ValueError(f"version {self.version}: this perfci reads version {PR_VERSION}")
        if not 1 <= self.pr < 10**9:
            raise ValueError(f"pr = {self.pr}: not a pull-request number")
        if self.run_id < 1 or self.run_attempt < 1:
            raise ValueError(f"run {self.run_id} attempt {self.run_attempt}: must be >= 1")
        for name in ("head_sha", "merge_sha", "base_sha"):
            value = getattr(self, name)
            if value is not None and not _SHA.match(value):
                raise ValueError(f"{name} = {value[:60]!r}: not a 40-digit commit sha")
        if self.outcome == "tested" and (self.merge_sha is None or self.base_sha is None):
            raise ValueError("a tested pull request needs merge_sha and base_sha")
        if self.outcome != "tested" and not self.reason:
            raise ValueError(f"outcome {self.outcome!r} needs a reason")
        if self.reason is not None and len(self.reason) > MAX_REASON:
            raise ValueError(f"reason has {len(self.reason)} characters (at most {MAX_REASON})")


def dump_pr_record(record: PrRecord, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n")
    os.replace(tmp, path)
