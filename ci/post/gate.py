"""What one finished perf-pr run means for the perf/gate check and the comment.

The verdict's conclusion is the judge's (:func:`ci.judge.gate_decision.judge`, taken again
here from the artifact's windows); this table adds only what a run without a usable
verdict means, and it never passes one:

=========================================  ==============  =================================
the run and its artifact                   check           comment
=========================================  ==============  =================================
crashed, timed out, cancelled, ...         failure         the reason (if the PR is known)
no valid pr.json / verdict, wrong commits  failure         the reason (if the PR is known)
a rule other than this repository's, or
windows that judge to another verdict      failure         the reason (if the PR is known)
the PR could not be merged                 neutral         the reason
the PR's head moved on meanwhile           neutral         none (the newer run comments)
a verdict                                  its conclusion  the verdict
=========================================  ==============  =================================

A run that gave no verdict never passes (a fail-safe gate). "The PR is known" means a
``pr.json`` that agrees with the trusted event, or a same-repository pull request named by
the event itself; the poster then still checks that the PR's head is the tested commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.judge.gate_folder import GateFolder, PrRecord
from ci.judge.gate_verdict import GateVerdict
from ci.post.artifact import (
    ArtifactError,
    check_against_event,
    check_verdict,
    load_gate_verdict,
    load_pr_record,
)
from ci.post.checks import Conclusion
from ci.post.event import WorkflowRunEvent
from ci.render.gate import (
    CheckMessage,
    GateLinks,
    gate_check,
    no_verdict_check,
    no_verdict_comment,
    render_gate_comment,
)
from ci.settings.gate import GateRule

NO_VERDICT = (
    "No verdict was reached, so the gate fails: a performance job that crashed, timed out "
    "or was cancelled never passes. Re-run the failed job from the run's page."
)


@dataclass(frozen=True, slots=True)
class GateOutcome:
    conclusion: Conclusion
    check: CheckMessage
    pr: int | None  # where the comment goes; None: no comment
    comment: str | None
    verdict: GateVerdict | None = None
    problem: str | None = None  # what was wrong with the run or its artifact, for the log


def _pr_of(event: WorkflowRunEvent, record: PrRecord | None) -> int | None:
    if record is not None:
        return record.pr
    return event.pull_requests[0] if len(event.pull_requests) == 1 else None


def _failed(title: str, detail: str, links: GateLinks, pr: int | None, problem: str) -> GateOutcome:
    return GateOutcome(
        "failure",
        no_verdict_check(title, detail, links),
        pr,
        no_verdict_comment(title, detail, links) if pr is not None else None,
        problem=problem,
    )


def gate_outcome(
    event: WorkflowRunEvent, folder: GateFolder | None, links: GateLinks, rule: GateRule
) -> GateOutcome:
    """Read the artifact (``folder``, None if none was downloaded) of a completed run and
    judge its windows again; ``rule``: this repository's ``perf.toml [gate]``."""
    assert event.action == "completed", "only a completed run has an outcome"
    record: PrRecord | None = None
    artifact_problem: str | None = None
    try:
        if folder is None:
            raise ArtifactError("no perf-pr artifact was downloaded")
        record = check_against_event(load_pr_record(folder), event)
    except ArtifactError as exc:
        artifact_problem = str(exc)
    pr = _pr_of(event, record)
    if not event.succeeded:
        reason = event.failure_reason()
        return _failed(f"FAIL: {reason}", f"{reason}. {NO_VERDICT}", links, pr, reason)
    if record is None:
        problem = f"the perf-pr artifact is unusable: {artifact_problem}"
        return _failed(
            "FAIL: no valid perf-pr artifact", f"{problem}. {NO_VERDICT}", links, pr, problem
        )
    if record.outcome == "cannot-merge":
        title = "NEUTRAL: the pull request cannot be merged"
        reason = record.reason or "no merge commit"
        return GateOutcome(
            "neutral",
            no_verdict_check(title, reason, links),
            record.pr,
            no_verdict_comment(title, reason, links),
            problem=reason,
        )
    if record.outcome == "superseded":
        title = "NEUTRAL: superseded by a newer commit"
        reason = record.reason or "the pull request's head moved on"
        return GateOutcome("neutral", no_verdict_check(title, reason, links), None, None)
    assert folder is not None  # a record was read from it
    try:
        verdict = load_gate_verdict(folder, record)
        judgement = check_verdict(folder, verdict, rule)
    except ArtifactError as exc:
        problem = f"the perf-pr artifact holds no valid verdict: {exc}"
        return _failed(
            "FAIL: no valid verdict", f"{problem}. {NO_VERDICT}", links, record.pr, problem
        )
    return GateOutcome(
        judgement.conclusion,
        gate_check(verdict, links),
        record.pr,
        render_gate_comment(verdict, links),
        verdict=verdict,
    )
