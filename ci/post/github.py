"""Post the rendered comment (and, for a personal token, the ``perf/gate`` commit status).

One sticky comment per pull request: the comment that carries :data:`ci.render.markdown.MARKER`
*and* was written by this token's own account is edited in place on every run. A comment
by anyone else that happens to contain the marker is never adopted (nor edited). A POST
that fails in a way that may have landed (a 5xx, a lost connection) is followed by a fresh
listing, and a comment of ours that appeared is adopted instead of posting a second one
(:meth:`ci.post.client.Session.create_once`). Rate-limit waits are bounded (``max_wait``).

The check run (:mod:`ci.post.checks`) replaces the commit status in the workflows: a
GitHub App's token (``GITHUB_TOKEN``) can write check runs, a personal token cannot, so
the status stays for ``perfci comment --repo ... --pr ...`` run with a personal token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from github.IssueComment import IssueComment
from github.PullRequest import PullRequest

from ci.errors import PostError
from ci.post.client import ClientOptions, Session, check_repo
from ci.render.markdown import MARKER

StatusState = Literal["success", "failure", "error", "pending"]
STATUS_CONTEXT = "perf/gate"
MAX_DESCRIPTION = 140
MAX_COMMENT = 65_536  # GitHub's limit on an issue comment body


#: The commit status for a ``perfci compare`` verdict. A status has no "neutral": an
#: inconclusive comparison or a statistics error must not read as a pass, so both are
#: ``error`` (red, with the verdict in the description); a warning stays below the fail
#: threshold by definition, so it does not block.
STATUS_FOR_VERDICT: dict[str, StatusState] = {
    "pass": "success",
    "improved": "success",
    "warn": "success",
    "fail": "failure",
    "inconclusive": "error",
    "error": "error",
}


def status_for(verdict_status: str) -> StatusState:
    try:
        return STATUS_FOR_VERDICT[verdict_status]
    except KeyError:
        raise PostError(f"no commit status for a verdict {verdict_status!r}") from None


@dataclass(frozen=True, slots=True)
class PostOutcome:
    comment_id: int
    comment_url: str
    created: bool
    sha: str | None
    status_state: StatusState | None
    adopted: bool = False  # a POST failed but had landed: that comment was kept


class StalePullRequest(PostError):
    """The pull request's head is no longer the commit that was measured."""


def _description(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "\u2026"
    return text


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
        return PostOutcome(existing.id, existing.html_url, False, head, None)
    new, adopted = session.create_once(
        f"creating a comment on #{pr}", lambda: pull.create_issue_comment(body), find
    )
    if adopted and new.body != body:
        session.call(f"editing comment {new.id}", lambda: new.edit(body))
    return PostOutcome(new.id, new.html_url, True, head, None, adopted)


def post_comment(
    repo: str,
    pr: int,
    body: str,
    token: str,
    api_url: str = "https://api.github.com",
    sha: str | None = None,
    state: StatusState | None = None,
    description: str = "",
    target_url: str | None = None,
    *,
    timeout: float = 30.0,
    seconds_between_requests: float = 0.25,
    seconds_between_writes: float = 1.0,
    bot_login: str | None = None,
    max_wait: float = 90.0,
) -> PostOutcome:
    """Create or update the sticky comment on ``repo`` PR ``pr``; set ``perf/gate``.

    The status is set on ``sha`` (the pull request's head commit when ``None``) if
    ``state`` is given. The pauses between requests are PyGithub's defaults, which keep
    clear of GitHub's secondary rate limits; tests set them to 0. Every API failure
    becomes a :class:`PostError` carrying the HTTP status and GitHub's message, never the
    token.
    """
    check_repo(repo)
    if pr < 1:
        raise PostError(f"pull request number {pr!r} must be positive")
    check_body(body)
    options = ClientOptions(
        api_url=api_url,
        timeout=timeout,
        seconds_between_requests=seconds_between_requests,
        seconds_between_writes=seconds_between_writes,
        bot_login=bot_login,
        max_wait=max_wait,
    )
    with Session(token, options) as session:
        outcome = upsert_comment(session, repo, pr, body)
        if state is None:
            return outcome
        head = sha or outcome.sha
        assert head is not None, "upsert_comment reads the pull request's head"
        repository = session.repo(repo)

        def status() -> None:
            commit = repository.get_commit(head)
            if target_url is None:
                commit.create_status(
                    state, description=_description(description), context=STATUS_CONTEXT
                )
            else:
                commit.create_status(
                    state,
                    target_url=target_url,
                    description=_description(description),
                    context=STATUS_CONTEXT,
                )

        # a status is idempotent (the latest per context wins): repeating it is safe
        session.call(f"setting status {STATUS_CONTEXT} on {head}", status)
        return PostOutcome(
            outcome.comment_id, outcome.comment_url, outcome.created, head, state, outcome.adopted
        )


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
