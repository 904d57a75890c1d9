"""The sticky pull-request comment, and the link to a run's artifact.

One sticky comment per pull request: the comment that carries :data:`ci.render.gate.MARKER`
*and* was written by this token's own account is edited in place on every run. A comment
by anyone else that happens to contain the marker is never adopted (nor edited). A POST
that fails in a way that may have landed (a 5xx, a lost connection) is followed by a fresh
listing, and a comment of ours that appeared is adopted instead of posting a second one
(:meth:`ci.post.client.Session.create_once`). Rate-limit waits are bounded (``max_wait``).
The ``perf/gate`` check run is :mod:`ci.post.checks`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from github.IssueComment import IssueComment
from github.PullRequest import PullRequest

from ci.errors import PostError
from ci.post.client import Session, check_repo
from ci.render.gate import MARKER

MAX_COMMENT = 65_536  # GitHub's limit on an issue comment body


@dataclass(frozen=True, slots=True)
class PostOutcome:
    comment_id: int
    comment_url: str
    created: bool
    sha: str  # the pull request's head when the comment was written
    adopted: bool = False  # a POST failed but had landed: that comment was kept


class StalePullRequest(PostError):
    """The pull request's head is no longer the commit that was measured."""


def check_body(body: str) -> str:
    if MARKER not in body:
        raise PostError(f"comment body lacks the marker {MARKER!r}; it could never be updated")
    if len(body) > MAX_COMMENT:
        raise PostError(f"comment body has {len(body)} characters; GitHub allows {MAX_COMMENT}")
    return body


def _ours(session: Session, comments: Iterable[IssueComment]) -> IssueComment | None:
    """The first comment with the marker written by this token's account, if any."""
    for comment in comments:
        if MARKER in (comment.body or "") and session.owns(comment.user):
            return comment
    return None


def upsert_comment(
    session: Session,
    repo: str,
    pr: int,
    body: str,
    *,
    expect_head: str | None = None,
) -> PostOutcome:
    """Create or edit the sticky comment on ``repo`` #``pr``.

    With ``expect_head``, a pull request whose head moved on (a newer commit is being
    measured) is refused with :class:`StalePullRequest`, so an old result never replaces a
    newer one, and a wrong pull-request number cannot receive another PR's result.
    """
    check_repo(repo)
    if pr < 1:
        raise PostError(f"pull request number {pr!r} must be positive")
    check_body(body)
    repository = session.repo(repo)
    pull: PullRequest = session.call(f"reading pull request #{pr}", lambda: repository.get_pull(pr))
    head = pull.head.sha
    if expect_head is not None and head != expect_head:
        raise StalePullRequest(
            f"pull request #{pr} has head {head[:12]}, but the run tested {expect_head[:12]}: "
            "not commenting"
        )

    def find() -> IssueComment | None:
        return _ours(session, list(pull.get_issue_comments()))

    existing = session.call(f"listing comments of #{pr}", find)
    if existing is not None:
        if existing.body != body:
            session.call(f"editing comment {existing.id}", lambda: existing.edit(body))
        return PostOutcome(existing.id, existing.html_url, False, head)
    new, adopted = session.create_once(
        f"creating a comment on #{pr}", lambda: pull.create_issue_comment(body), find
    )
    if adopted and new.body != body:
        session.call(f"editing comment {new.id}", lambda: new.edit(body))
    return PostOutcome(new.id, new.html_url, True, head, adopted)


def artifact_url(
    session: Session, repo: str, run_id: int, name: str, server_url: str
) -> str | None:
    """The page of the run's artifact ``name`` (None if the run has none by that name)."""
    repository = session.repo(repo)

    def find() -> int | None:
        run = repository.get_workflow_run(run_id)
        return next((a.id for a in run.get_artifacts() if a.name == name), None)

    artifact_id = session.call(f"listing the artifacts of run {run_id}", find)
    if artifact_id is None:
        return None
    return f"{server_url.rstrip('/')}/{repo}/actions/runs/{run_id}/artifacts/{artifact_id}"
