"""The ``perf-pr`` artifact as ``perf-comment`` receives it: untrusted files, checked.

The artifact is the gate's report folder (:class:`~ci.judge.gate_folder.GateFolder`),
``pr.json`` included. It was produced on a runner that ran the pull request's code, so
nothing in it is taken on trust: every field is validated, and ``pr.json`` must agree with
the trusted ``workflow_run`` event (same run, same attempt, same head commit) before its
pull-request number is used at all.

A verdict is refused when it measured other commits than ``pr.json`` names, when its rule
is not this repository's ``perf.toml [gate]`` rule, or when its own windows do not judge to
its judgement under that rule (:func:`check_verdict`): the decision is taken again by
trusted code (:func:`ci.judge.gate_decision.rejudge`).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ci.errors import ComparisonError, PostError, ResultsError
from ci.judge.gate_decision import rejudge
from ci.judge.gate_folder import GateFolder, PrRecord
from ci.judge.gate_verdict import GateJudgement, GateVerdict, load_verdict
from ci.post.event import WorkflowRunEvent
from ci.results.duet import load_duet
from ci.settings.gate import GateRule

MAX_PR_FILE = 64 * 1024
MAX_VERDICT_FILE = 16 * 1024 * 1024
MAX_WINDOWS_FILE = 64 * 1024 * 1024


class ArtifactError(PostError):
    """The artifact is missing, malformed, or belongs to another run or commit."""


def _read_small(path: Path, limit: int) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{path.name} is missing from the artifact (or not a plain file)")
    size = path.stat().st_size
    if size > limit:
        raise ArtifactError(f"{path.name} has {size} bytes; at most {limit} are read")
    return path.read_bytes()


def load_pr_record(folder: GateFolder) -> PrRecord:
    """``pr.json``, validated (not yet checked against the event)."""
    if not folder.root.is_dir():
        raise ArtifactError(f"no perf-pr artifact at {folder.root} (the run uploaded none)")
    raw = _read_small(folder.pr, MAX_PR_FILE)
    try:
        return msgspec.json.decode(raw, type=PrRecord)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ArtifactError(f"{folder.pr.name} is invalid: {exc}") from exc


def check_against_event(record: PrRecord, event: WorkflowRunEvent) -> PrRecord:
    """Refuse an artifact of another run, attempt or commit than the one that completed."""
    if (record.run_id, record.run_attempt) != (event.run_id, event.run_attempt):
        raise ArtifactError(
            f"pr.json is from run {record.run_id} attempt {record.run_attempt}, not run "
            f"{event.run_id} attempt {event.run_attempt} (a stale artifact?)"
        )
    if record.head_sha != event.head_sha:
        raise ArtifactError(
            f"pr.json names head {record.head_sha[:12]}, but the run tested {event.head_sha[:12]}"
        )
    if event.pull_requests and record.pr not in event.pull_requests:
        raise ArtifactError(
            f"pr.json names pull request #{record.pr}, but the run belongs to "
            + ", ".join(f"#{n}" for n in event.pull_requests)
        )
    return record


def _quiet(folder: GateFolder, exc: Exception) -> str:
    return str(exc).replace(str(folder.root) + "/", "")


def load_gate_verdict(folder: GateFolder, record: PrRecord) -> GateVerdict:
    """``verdict.json``, validated, of exactly the commits ``record`` names."""
    _read_small(folder.verdict, MAX_VERDICT_FILE)  # present, a plain file, not huge
    try:
        verdict = load_verdict(folder.verdict)
    except ResultsError as exc:
        raise ArtifactError(_quiet(folder, exc)) from exc
    measured = (verdict.base.sha, verdict.candidate.sha)
    if measured != (record.base_sha, record.merge_sha):
        raise ArtifactError(
            f"the verdict measured {verdict.base.sha[:12]} -> {verdict.candidate.sha[:12]}, "
            f"not the merge commit {str(record.merge_sha)[:12]} and its first parent "
            f"{str(record.base_sha)[:12]}"
        )
    return verdict


def judge_folder(folder: GateFolder, verdict: GateVerdict) -> GateJudgement:
    """The folder's ``windows.json`` judged again under the verdict's own rule."""
    _read_small(folder.windows, MAX_WINDOWS_FILE)
    try:
        return rejudge(verdict, load_duet(folder.windows))
    except (ResultsError, ComparisonError) as exc:
        raise ArtifactError(_quiet(folder, exc)) from exc


def check_verdict(folder: GateFolder, verdict: GateVerdict, rule: GateRule) -> GateJudgement:
    """Refuse a verdict not judged by ``rule`` (this repository's) or not confirmed by its
    windows; return the judgement taken again."""
    if verdict.rule != rule:
        raise ArtifactError(
            "the verdict was judged under another rule than this repository's perf.toml "
            "[gate] (did [gate] change on the default branch meanwhile? re-run the check)"
        )
    judgement = judge_folder(folder, verdict)
    if judgement != verdict.judgement:
        if (judgement.decision, judgement.pairs) == (
            verdict.judgement.decision,
            verdict.judgement.pairs,
        ):
            raise ArtifactError(
                "windows.json judges to the verdict's decision, but with other figures or "
                "reasons than the verdict holds"
            )
        raise ArtifactError(
            f"windows.json judges to {judgement.decision!r} over {judgement.pairs} windows "
            f"under the verdict's rule, but the verdict says {verdict.judgement.decision!r} "
            f"over {verdict.judgement.pairs}"
        )
    return judgement
