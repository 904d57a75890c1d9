"""Post the rendered comment and the ``perf/gate`` commit status to GitHub. No rendering here.

One comment per pull request: the comment carrying :data:`ci.render.markdown.MARKER` is edited in
place on every run, so a pull request never collects a pile of stale performance reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import github
import github.Auth
from github.GithubException import GithubException

from ci.errors import PostError
from ci.render.markdown import MARKER

StatusState = Literal["success", "failure", "error", "pending"]
STATUS_CONTEXT = "perf/gate"
MAX_DESCRIPTION = 140
MAX_COMMENT = 65_536  # GitHub's limit on an issue comment body


@dataclass(frozen=True, slots=True)
class PostOutcome:
    comment_id: int
    comment_url: str
    created: bool
    sha: str | None
    status_state: StatusState | None


def _description(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "\u2026"
    return text


def _error(action: str, exc: GithubException) -> PostError:
    message = exc.message if exc.message else str(exc.data)[:300]
    return PostError(f"GitHub API error while {action}: HTTP {exc.status}: {message}")


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
) -> PostOutcome:
    """Create or update the marked comment on ``repo`` PR ``pr``; set ``perf/gate``.

    The status is set on ``sha`` (the pull request's head commit when ``None``) if
    ``state`` is given. The pauses between requests are PyGithub's defaults, which keep
    clear of GitHub's secondary rate limits; tests set them to 0. Every API failure
    becomes a :class:`PostError` carrying the HTTP status and GitHub's message, never the
    token.
    """
    if "/" not in repo:
        raise PostError(f"repository {repo!r} must be given as owner/name")
    if pr < 1:
        raise PostError(f"pull request number {pr!r} must be positive")
    if MARKER not in body:
        raise PostError(f"comment body lacks the marker {MARKER!r}; it could never be updated")
    if len(body) > MAX_COMMENT:
        raise PostError(f"comment body has {len(body)} characters; GitHub allows {MAX_COMMENT}")
    gh = github.Github(
        auth=github.Auth.Token(token),
        base_url=api_url,
        timeout=int(timeout),
        seconds_between_requests=seconds_between_requests,
        seconds_between_writes=seconds_between_writes,
    )
    action = f"reading {repo}"
    try:
        repository = gh.get_repo(repo)
        action = f"reading pull request #{pr}"
        pull = repository.get_pull(pr)
        action = f"listing comments of #{pr}"
        existing = next((c for c in pull.get_issue_comments() if MARKER in (c.body or "")), None)
        if existing is not None:
            action = f"editing comment {existing.id}"
            existing.edit(body)
            comment_id, comment_url, created = existing.id, existing.html_url, False
        else:
            action = f"creating a comment on #{pr}"
            new = pull.create_issue_comment(body)
            comment_id, comment_url, created = new.id, new.html_url, True
        head = sha
        if state is not None:
            head = sha or pull.head.sha
            action = f"setting status {STATUS_CONTEXT} on {head}"
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
    except GithubException as exc:
        raise _error(action, exc) from exc
    except OSError as exc:  # connection refused, DNS, TLS
        raise PostError(f"cannot reach {api_url} while {action}: {exc}") from exc
    finally:
        gh.close()
    return PostOutcome(comment_id, comment_url, created, head, state)
