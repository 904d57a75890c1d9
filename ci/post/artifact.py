"""The ``perf-pr`` artifact as ``perf-comment`` receives it: untrusted files, checked.

The artifact holds ``pr.json``, written by the perf-pr workflow before anything of the pull
request runs (which pull request, which commits, whether it merged), and the gate's report
folder. Both were produced on a runner that ran the pull request's code, so nothing in them
is taken on trust: every field is validated, and ``pr.json`` must agree with the trusted
``workflow_run`` event (same run, same attempt, same head commit) before its pull-request
number is used at all.

The gate's verdict (:mod:`ci.judge.gate_verdict`, ``verdict.json``) is read here and
nowhere else in ``ci/post``: this module is the one place that knows the report folder's
layout. It refuses a verdict that measured other commits than ``pr.json`` names, and one
whose own windows (``windows.json``) do not judge to its decision under the default branch's
``[gate]`` rule (:func:`rejudge`): the decision is taken again by trusted code.

``pr.json`` (version 1)::

    {"version": 1, "pr": 17, "head_sha": "<40 hex>", "run_id": 123, "run_attempt": 1,
     "outcome": "tested" | "cannot-merge" | "superseded",
     "merge_sha": "<40 hex>", "base_sha": "<40 hex>",   # when tested
     "reason": "..."}                                   # when not tested
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import msgspec

from ci.errors import ComparisonError, PostError, ResultsError
from ci.judge.duet import judge_duet
from ci.judge.gate_verdict import VERDICT_FILE, GateVerdict, load_verdict
from ci.post.event import WorkflowRunEvent
from ci.results.duet import load_duet
from ci.settings.gate import GateConfig

PR_FILE = "pr.json"
PR_VERSION = 1
MAX_PR_FILE = 64 * 1024
MAX_REASON = 500
MAX_VERDICT_FILE = 16 * 1024 * 1024
WINDOWS_FILE = "windows.json"  # the raw per-window figures the verdict was judged from
MAX_WINDOWS_FILE = 64 * 1024 * 1024
Outcome = Literal["tested", "cannot-merge", "superseded"]
_SHA = re.compile(r"^[0-9a-f]{40}$")


class ArtifactError(PostError):
    """The artifact is missing, malformed, or belongs to another run or commit."""


class PrRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    pr: int
    head_sha: str
    run_id: int
    run_attempt: int
    outcome: Outcome
    merge_sha: str | None = None
    base_sha: str | None = None
    reason: str | None = None

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


def _read_small(path: Path, limit: int) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{path.name} is missing from the artifact (or not a plain file)")
    size = path.stat().st_size
    if size > limit:
        raise ArtifactError(f"{path.name} has {size} bytes; at most {limit} are read")
    return path.read_bytes()


def load_pr_record(folder: Path) -> PrRecord:
    """``folder/pr.json``, validated (not yet checked against the event)."""
    if not folder.is_dir():
        raise ArtifactError(f"no perf-pr artifact at {folder} (the run uploaded none)")
    raw = _read_small(folder / PR_FILE, MAX_PR_FILE)
    try:
        return msgspec.json.decode(raw, type=PrRecord)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ArtifactError(f"{PR_FILE} is invalid: {exc}") from exc


def check_against_event(record: PrRecord, event: WorkflowRunEvent) -> PrRecord:
    """Refuse an artifact of another run, attempt or commit than the one that completed."""
    if (record.run_id, record.run_attempt) != (event.run_id, event.run_attempt):
        raise ArtifactError(
            f"{PR_FILE} is from run {record.run_id} attempt {record.run_attempt}, not run "
            f"{event.run_id} attempt {event.run_attempt} (a stale artifact?)"
        )
    if record.head_sha != event.head_sha:
        raise ArtifactError(
            f"{PR_FILE} names head {record.head_sha[:12]}, but the run tested {event.head_sha[:12]}"
        )
    if event.pull_requests and record.pr not in event.pull_requests:
        raise ArtifactError(
            f"{PR_FILE} names pull request #{record.pr}, but the run belongs to "
            + ", ".join(f"#{n}" for n in event.pull_requests)
        )
    return record


def load_gate_verdict(folder: Path, record: PrRecord) -> GateVerdict:
    """``folder/verdict.json``, validated, of exactly the commits ``record`` names."""
    path = folder / VERDICT_FILE
    _read_small(path, MAX_VERDICT_FILE)  # present, a plain file, not huge
    try:
        verdict = load_verdict(path)
    except ResultsError as exc:
        raise ArtifactError(str(exc).replace(str(folder) + "/", "")) from exc
    measured = (verdict.base.sha, verdict.candidate.sha)
    if measured != (record.base_sha, record.merge_sha):
        raise ArtifactError(
            f"the verdict measured {verdict.base.sha[:12]} -> {verdict.candidate.sha[:12]}, "
            f"not the merge commit {str(record.merge_sha)[:12]} and its first parent "
            f"{str(record.base_sha)[:12]}"
        )
    return verdict


def rejudge(folder: Path, verdict: GateVerdict, config: GateConfig) -> None:
    """Judge ``windows.json`` again with ``config``; refuse a verdict it does not confirm."""
    path = folder / WINDOWS_FILE
    _read_small(path, MAX_WINDOWS_FILE)
    try:
        judgement = judge_duet(load_duet(path), config)
    except (ResultsError, ComparisonError) as exc:
        raise ArtifactError(str(exc).replace(str(folder) + "/", "")) from exc
    if (judgement.decision, judgement.windows) != (verdict.statistical_decision, verdict.pairs):
        raise ArtifactError(
            f"{WINDOWS_FILE} judges to {judgement.decision!r} over {judgement.windows} windows "
            f"under this repository's [gate] rule, but the verdict says "
            f"{verdict.statistical_decision!r} over {verdict.pairs}"
        )
