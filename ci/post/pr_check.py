"""One ``workflow_run`` event of perf-pr, posted: the perf/gate check run and the comment.

``requested`` (or ``in_progress``) marks the check in progress. ``completed`` reads the
artifact (:func:`ci.post.gate.gate_outcome`), then posts the check and the comment
*independently*: a failure of one is collected and the other is still attempted, so a
comment that cannot be written (a locked conversation, a rate limit) never leaves the
check spinning, and the reverse. A pull request whose head moved on gets no comment (the
newer run will write it), but its old head commit still gets its check.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from ci.errors import PostError
from ci.judge.gate_folder import GateFolder
from ci.post.checks import CheckResult, CheckTarget, CheckText, conclude_check, start_check
from ci.post.client import Session
from ci.post.event import WorkflowRunEvent
from ci.post.gate import GateOutcome, gate_outcome
from ci.post.github import PostOutcome, StalePullRequest, artifact_url, upsert_comment
from ci.render.gate import CheckMessage, GateLinks, started_check
from ci.settings.gate import GateRule

ARTIFACT_NAME = "perf-pr"


@dataclass(frozen=True, slots=True)
class EventReport:
    action: str
    check: CheckResult | None
    comment: PostOutcome | None
    outcome: GateOutcome | None  # for "completed"
    notes: tuple[str, ...]  # skipped on purpose, or what was wrong with the run
    errors: tuple[str, ...]  # what could not be posted

    @property
    def ok(self) -> bool:
        return not self.errors


def target_of(event: WorkflowRunEvent) -> CheckTarget:
    return CheckTarget(
        event.repo, event.head_sha, event.run_id, event.run_attempt, event.attempt_url
    )


def server_of(event: WorkflowRunEvent) -> str:
    """``https://github.com`` (or the Enterprise host) from the run's own URL."""
    parts = urllib.parse.urlsplit(event.run_url)
    return f"{parts.scheme}://{parts.netloc}"


def _text(message: CheckMessage) -> CheckText:
    return CheckText(message.title, message.summary)


def completed_outcome(
    event: WorkflowRunEvent, folder: GateFolder | None, artifact: str | None, rule: GateRule
) -> GateOutcome:
    """What the check and comment say (also what ``--dry-run`` prints)."""
    links = GateLinks(run_url=event.attempt_url, artifact_url=artifact)
    return gate_outcome(event, folder, links, rule)


def handle_event(
    session: Session, event: WorkflowRunEvent, folder: GateFolder | None, rule: GateRule
) -> EventReport:
    """Post for one event; ``rule``: this repository's ``perf.toml [gate]``."""
    target = target_of(event)
    if event.action != "completed":
        links = GateLinks(run_url=event.attempt_url)
        started = start_check(session, target, _text(started_check(links)))
        return EventReport(event.action, started, None, None, (), ())
    notes: list[str] = []
    errors: list[str] = []
    artifact = None
    try:
        artifact = artifact_url(session, event.repo, event.run_id, ARTIFACT_NAME, server_of(event))
    except PostError as exc:  # only a link: the check must still be set
        notes.append(f"no artifact link: {exc}")
    outcome = completed_outcome(event, folder, artifact, rule)
    if outcome.problem:
        notes.append(outcome.problem)
    check = None
    try:
        check = conclude_check(session, target, outcome.conclusion, _text(outcome.check))
    except PostError as exc:
        errors.append(f"check run: {exc}")
    comment = None
    if outcome.pr is None or outcome.comment is None:
        notes.append("no comment: the pull request is not known or the run was superseded")
    else:
        try:
            comment = upsert_comment(
                session, event.repo, outcome.pr, outcome.comment, expect_head=event.head_sha
            )
        except StalePullRequest as exc:
            notes.append(str(exc))
        except PostError as exc:
            errors.append(f"comment: {exc}")
    return EventReport(event.action, check, comment, outcome, tuple(notes), tuple(errors))
