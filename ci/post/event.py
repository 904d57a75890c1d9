"""The ``workflow_run`` event that starts ``perf-comment``, read from ``$GITHUB_EVENT_PATH``.

The payload comes from GitHub, not from the pull request, so its run id, attempt, head sha
and conclusion are trusted; it is still checked field by field, so that a wrong file (the
event of another trigger, a hand-written test payload) is a clear error rather than a check
posted on the wrong commit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ci.errors import PostError

Action = Literal["requested", "in_progress", "completed"]
ACTIONS: tuple[Action, ...] = ("requested", "in_progress", "completed")
MAX_EVENT_BYTES = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

#: How a finished perf-pr run that produced no verdict is described (the check's title).
RUN_FAILURES: dict[str, str] = {
    "failure": "failed before it reached a verdict",
    "cancelled": "was cancelled",
    "timed_out": "timed out",
    "startup_failure": "could not start",
    "action_required": "is waiting for approval",
    "stale": "went stale",
    "skipped": "was skipped",
    "neutral": "ended neutral without a verdict",
}


@dataclass(frozen=True, slots=True)
class WorkflowRunEvent:
    action: Action
    repo: str  # owner/name of the repository the check and comment go to
    workflow: str  # the triggering workflow's name (perf-pr)
    run_id: int
    run_attempt: int
    run_url: str  # the run's page; attempt_url links this attempt
    head_sha: str  # the pull request's head commit that was tested
    event: str  # what triggered perf-pr: pull_request expected
    conclusion: str | None  # set on "completed"
    pull_requests: tuple[int, ...]  # same-repository PRs only; empty for forks

    @property
    def attempt_url(self) -> str:
        return f"{self.run_url}/attempts/{self.run_attempt}"

    @property
    def succeeded(self) -> bool:
        return self.action == "completed" and self.conclusion == "success"

    def failure_reason(self) -> str:
        """Why a completed run gave no verdict, in words (for the check run's title)."""
        what = RUN_FAILURES.get(self.conclusion or "", f"ended as {self.conclusion!r}")
        return f"The {self.workflow} run {what}"


def _field(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise PostError(f"{where}.{key} is {value!r:.80}: expected {kind.__name__}")
    return value


def parse_event(data: object, source: str = "event") -> WorkflowRunEvent:
    """Validate a decoded ``workflow_run`` payload."""
    bad = f"{source}: not a workflow_run event payload"
    if not isinstance(data, dict) or not isinstance(data.get("workflow_run"), dict):
        raise PostError(f"{bad} (no workflow_run object)")
    action = data.get("action")
    if action not in ACTIONS:
        raise PostError(f"{bad}: action {action!r:.40} is not one of {', '.join(ACTIONS)}")
    run: dict[str, Any] = data["workflow_run"]
    repository = data.get("repository")
    if not isinstance(repository, dict):
        raise PostError(f"{bad} (no repository object)")
    repo = _field(repository, "full_name", str, "repository")
    if not _REPO.match(repo):
        raise PostError(f"{source}: repository.full_name {repo!r:.80} is not owner/name")
    run_id = _field(run, "id", int, "workflow_run")
    attempt = _field(run, "run_attempt", int, "workflow_run")
    if run_id < 1 or attempt < 1:
        raise PostError(f"{source}: workflow_run id {run_id} / attempt {attempt} must be >= 1")
    head = _field(run, "head_sha", str, "workflow_run")
    if not _SHA.match(head):
        raise PostError(f"{source}: workflow_run.head_sha {head!r:.80} is not a commit sha")
    url = _field(run, "html_url", str, "workflow_run")
    if not url.startswith(("https://", "http://")):
        raise PostError(f"{source}: workflow_run.html_url {url!r:.80} is not a URL")
    conclusion = run.get("conclusion")
    if action == "completed" and not isinstance(conclusion, str):
        raise PostError(f"{source}: a completed workflow_run without a conclusion")
    prs = run.get("pull_requests") or []
    numbers = tuple(
        p["number"]
        for p in prs
        if isinstance(p, dict) and isinstance(p.get("number"), int) and p["number"] > 0
    )
    return WorkflowRunEvent(
        action=action,
        repo=repo,
        workflow=str(run.get("name") or "perf-pr"),
        run_id=run_id,
        run_attempt=attempt,
        run_url=url.rstrip("/"),
        head_sha=head,
        event=str(run.get("event") or ""),
        conclusion=conclusion if isinstance(conclusion, str) else None,
        pull_requests=numbers,
    )


def load_event(path: Path) -> WorkflowRunEvent:
    """Read and validate ``$GITHUB_EVENT_PATH``."""
    try:
        size = path.stat().st_size
        if size > MAX_EVENT_BYTES:
            raise PostError(f"{path}: {size} bytes, larger than any GitHub event payload")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PostError(f"{path}: cannot read the event payload: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PostError(f"{path}: the event payload is not JSON: {exc}") from exc
    return parse_event(data, str(path))
