"""One GitHub issue per regression of main's history: opened, kept up to date, closed.

An issue belongs to this pipeline when it carries the label, the tracking marker in its
body, *and* was written by the token's own account (:meth:`Session.owns`): an issue
someone else opened with the marker pasted into it is never edited or closed.

=======================  ================================  ===============================
wanted (ci.history.       an open issue of ours exists      none exists
tracking)
=======================  ================================  ===============================
open                     title and body edited if changed  created (at most once: a failed
                                                           POST is looked up before retry)
closed                   a comment saying why, then closed nothing
=======================  ================================  ===============================

Text comes from :mod:`ci.render.history`; nothing here renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from github.Issue import Issue
from github.Repository import Repository

from ci.errors import PostError
from ci.post.client import Session

Action = Literal["created", "updated", "unchanged", "closed"]
MAX_BODY = 65_536  # GitHub's limit on an issue body


@dataclass(frozen=True, slots=True)
class IssueText:
    """What one tracked metric's issue should be: open with this text, or closed with a
    comment."""

    tracking: str  # the marker's text; the body must contain its HTML comment
    state: Literal["open", "closed"]
    title: str
    body: str  # open: the issue body
    comment: str  # closed: the closing comment

    def __post_init__(self) -> None:
        if self.state == "open" and f"<!-- {self.tracking} -->" not in self.body:
            raise PostError(f"issue body lacks the marker of {self.tracking}")
        if len(self.body) > MAX_BODY:
            raise PostError(f"issue body has {len(self.body)} characters; GitHub allows {MAX_BODY}")


@dataclass(frozen=True, slots=True)
class IssueOutcome:
    tracking: str
    action: Action
    number: int
    url: str


def _ours(session: Session, issue: Issue, tracking: str) -> bool:
    return (
        issue.pull_request is None
        and f"<!-- {tracking} -->" in (issue.body or "")
        and session.owns(issue.user)
    )


def _open_issues(session: Session, repository: Repository, label: str) -> list[Issue]:
    return session.call(
        f"listing open issues labelled {label!r}",
        lambda: list(repository.get_issues(state="open", labels=[label])),
    )


def sync_issues(
    session: Session, repo: str, label: str, wanted: Sequence[IssueText]
) -> list[IssueOutcome]:
    """Bring every tracked metric's issue to its wanted state; returns what changed."""
    repository = session.repo(repo)
    existing = _open_issues(session, repository, label)
    outcomes: list[IssueOutcome] = []
    for text in wanted:
        found = sorted(
            (i for i in existing if _ours(session, i, text.tracking)), key=lambda i: i.number
        )
        current = found[0] if found else None
        if text.state == "open":
            outcomes.append(_open(session, repository, label, text, current))
        elif current is not None:
            outcomes.append(_close(session, current, text))
    return outcomes


def _close(session: Session, issue: Issue, text: IssueText) -> IssueOutcome:
    session.create_once(
        f"commenting on issue #{issue.number}",
        lambda: issue.create_comment(text.comment),
        lambda: next((c for c in issue.get_comments() if c.body == text.comment), None),
    )
    session.call(
        f"closing issue #{issue.number}",
        lambda: issue.edit(state="closed", state_reason="completed"),
    )
    return IssueOutcome(text.tracking, "closed", issue.number, issue.html_url)


def _open(
    session: Session, repository: Repository, label: str, text: IssueText, current: Issue | None
) -> IssueOutcome:
    if current is None:

        def find() -> Issue | None:
            return next(
                (
                    i
                    for i in _open_issues(session, repository, label)
                    if _ours(session, i, text.tracking)
                ),
                None,
            )

        issue, _adopted = session.create_once(
            f"opening an issue for {text.tracking}",
            lambda: repository.create_issue(title=text.title, body=text.body, labels=[label]),
            find,
        )
        return IssueOutcome(text.tracking, "created", issue.number, issue.html_url)
    if current.title == text.title and (current.body or "") == text.body:
        return IssueOutcome(text.tracking, "unchanged", current.number, current.html_url)
    session.call(
        f"editing issue #{current.number}",
        lambda: current.edit(title=text.title, body=text.body),
    )
    return IssueOutcome(text.tracking, "updated", current.number, current.html_url)
