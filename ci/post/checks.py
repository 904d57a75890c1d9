"""The ``perf/gate`` check run: in progress when the PR job starts, then the verdict or the failure.

One check run per *attempt* of the ``perf-pr`` workflow run, told apart by its
``external_id`` (``perfci/<run id>/<attempt>``). GitHub does not let a completed check run
go back to in progress, and GitHub's own re-run of a job creates a new check run of the
same name that then stands for it; this does the same:

=================================  ========================================================
situation                          what is written
=================================  ========================================================
start, attempt not seen yet        a new check run, ``in_progress``, linking the run
start, attempt already has one     nothing (a duplicate event, or the end came first)
conclude, attempt's run open       that check run completed with the conclusion
conclude, none for the attempt     a new, completed check run (the start was missed)
conclude, attempt's run completed  nothing if the conclusion is the same, else a new one
a newer attempt or run exists      this (stale) attempt only closes its own open check
                                   run; it never creates one that would hide the newer
older check runs still open        completed as ``cancelled``, "superseded by ..."
=================================  ========================================================

The check is independent of the comment: ``ci.post.github`` posts that, and a failure of
one does not stop the other (the CLI calls both). Text comes from ``ci.render.gate``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from github.CheckRun import CheckRun
from github.GithubObject import NotSet
from github.Repository import Repository

from ci.errors import PostError
from ci.post.client import Session, check_repo

CHECK_NAME = "perf/gate"
EXTERNAL_PREFIX = "perfci/"
MAX_TITLE = 255
MAX_SUMMARY = 65_535  # GitHub's limit on output.summary
Conclusion = Literal["success", "failure", "neutral", "cancelled"]
CONCLUSIONS: tuple[Conclusion, ...] = ("success", "failure", "neutral", "cancelled")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_EXTERNAL = re.compile(r"^perfci/([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class CheckText:
    """A check run's ``output``: a one-line title and a Markdown summary."""

    title: str
    summary: str

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise PostError("a check run needs a title")
        if len(self.summary) > MAX_SUMMARY:
            raise PostError(
                f"check summary has {len(self.summary)} characters; GitHub allows {MAX_SUMMARY}"
            )

    def output(self) -> dict[str, str | list[dict[str, str | int]]]:
        title = " ".join(self.title.split())
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "\u2026"
        return {"title": title, "summary": self.summary}


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """Which commit the check is on and which workflow-run attempt it stands for."""

    repo: str
    head_sha: str
    run_id: int
    run_attempt: int
    details_url: str | None = None

    def __post_init__(self) -> None:
        check_repo(self.repo)
        if not _SHA.match(self.head_sha):
            raise PostError(f"head sha {self.head_sha!r} is not a 40-digit commit sha")
        if self.run_id < 1 or self.run_attempt < 1:
            raise PostError(
                f"run id {self.run_id!r} and attempt {self.run_attempt!r} must be positive"
            )

    @property
    def external_id(self) -> str:
        return f"{EXTERNAL_PREFIX}{self.run_id}/{self.run_attempt}"

    @property
    def key(self) -> tuple[int, int]:
        return (self.run_id, self.run_attempt)


@dataclass(frozen=True, slots=True)
class CheckResult:
    check_run_id: int
    html_url: str | None
    status: str
    conclusion: str | None
    created: bool  # this call created the check run it reports
    superseded: tuple[int, ...] = ()  # older open check runs it concluded as cancelled
    stale: bool = False  # a newer attempt owns the check; this reports the newest one


def _key(run: CheckRun) -> tuple[int, int] | None:
    match = _EXTERNAL.match(run.external_id or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _ours(session: Session, repository: Repository, target: CheckTarget) -> list[CheckRun]:
    """Every ``perf/gate`` check run this tool wrote on the head commit (all attempts)."""

    def listing() -> list[CheckRun]:
        commit = repository.get_commit(target.head_sha)
        runs = commit.get_check_runs(check_name=CHECK_NAME, filter="all")
        return [r for r in runs if r.name == CHECK_NAME and _key(r) is not None]

    return session.call(f"listing {CHECK_NAME} check runs on {target.head_sha[:12]}", listing)


def _result(
    run: CheckRun, created: bool, superseded: tuple[int, ...] = (), stale: bool = False
) -> CheckResult:
    return CheckResult(run.id, run.html_url, run.status, run.conclusion, created, superseded, stale)


def _now(session: Session) -> dt.datetime:
    return dt.datetime.fromtimestamp(session.options.clock(), dt.UTC)


def _create(
    session: Session,
    repository: Repository,
    target: CheckTarget,
    text: CheckText,
    conclusion: Conclusion | None,
) -> CheckRun:
    def create() -> CheckRun:
        details = target.details_url or NotSet
        if conclusion is None:
            return repository.create_check_run(
                CHECK_NAME,
                target.head_sha,
                details_url=details,
                external_id=target.external_id,
                status="in_progress",
                started_at=_now(session),
                output=text.output(),
            )
        return repository.create_check_run(
            CHECK_NAME,
            target.head_sha,
            details_url=details,
            external_id=target.external_id,
            status="completed",
            conclusion=conclusion,
            completed_at=_now(session),
            output=text.output(),
        )

    def find() -> CheckRun | None:
        found = [r for r in _ours(session, repository, target) if _key(r) == target.key]
        if conclusion is not None:
            found = [r for r in found if r.conclusion == conclusion]
        return max(found, key=lambda r: r.id, default=None)

    run, _ = session.create_once(f"creating the {CHECK_NAME} check run", create, find)
    return run


def _complete(
    session: Session,
    run: CheckRun,
    conclusion: Conclusion,
    text: CheckText,
    details_url: str | None,
) -> None:
    def complete() -> None:
        run.edit(
            status="completed",
            conclusion=conclusion,
            completed_at=_now(session),
            output=text.output(),
            details_url=details_url or NotSet,
        )

    session.call(f"completing the {CHECK_NAME} check run {run.id}", complete)


def _supersede(
    session: Session, runs: list[CheckRun], target: CheckTarget, keep: int
) -> tuple[int, ...]:
    """Close our older check runs that were left open (a cancelled or lost attempt)."""
    closed = []
    for run in runs:
        key = _key(run)
        if run.id == keep or run.status == "completed" or key is None or key >= target.key:
            continue
        text = CheckText(
            f"Superseded by run {target.run_id} attempt {target.run_attempt}",
            f"A later attempt of the performance check replaced this one: "
            f"{target.details_url or target.external_id}",
        )
        _complete(session, run, "cancelled", text, None)
        closed.append(run.id)
    return tuple(closed)


def start_check(session: Session, target: CheckTarget, text: CheckText) -> CheckResult:
    """Mark the check in progress for this attempt (once)."""
    repository = session.repo(target.repo)
    runs = _ours(session, repository, target)
    mine = [r for r in runs if _key(r) == target.key]
    if mine:
        return _result(max(mine, key=lambda r: r.id), created=False)
    run = _create(session, repository, target, text, None)
    return _result(run, created=True, superseded=_supersede(session, runs, target, run.id))


def conclude_check(
    session: Session, target: CheckTarget, conclusion: Conclusion, text: CheckText
) -> CheckResult:
    """Complete this attempt's check run with ``conclusion`` (see the table above)."""
    if conclusion not in CONCLUSIONS:
        raise PostError(f"conclusion {conclusion!r} is not one of {', '.join(CONCLUSIONS)}")
    repository = session.repo(target.repo)
    runs = _ours(session, repository, target)
    mine = [r for r in runs if _key(r) == target.key]
    open_runs = [r for r in mine if r.status != "completed"]
    stale = any((_key(r) or (0, 0)) > target.key for r in runs)
    if open_runs:
        run = max(open_runs, key=lambda r: r.id)
        _complete(session, run, conclusion, text, target.details_url)
        created = False
    elif stale:
        # A newer attempt owns the check now; a new check run here would hide it.
        newest = max(runs, key=lambda r: _key(r) or (0, 0))
        return _result(newest, created=False, stale=True)
    elif mine and max(mine, key=lambda r: r.id).conclusion == conclusion:
        return _result(max(mine, key=lambda r: r.id), created=False)
    else:
        run = _create(session, repository, target, text, conclusion)
        created = True
    if stale:
        return _result(run, created)
    return _result(run, created, _supersede(session, runs, target, run.id))
