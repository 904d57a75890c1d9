"""The perf/gate check run against the local GitHub-like server: every state and re-runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ci.errors import PostError
from ci.post.checks import (
    CHECK_NAME,
    CheckTarget,
    CheckText,
    Conclusion,
    conclude_check,
    start_check,
)
from ci.post.client import ClientOptions, Session
from tests.ci.post.fake_github import HEAD, NAME, OWNER, TOKEN, FakeGitHub, Fault, serve

RUN_URL = "https://github.example/acme/search/actions/runs/{run}/attempts/{attempt}"
STARTED = CheckText("Measuring base and candidate", "In progress.")


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    with serve(request.param) as state:
        yield state


@pytest.fixture
def session(fake: FakeGitHub) -> Iterator[Session]:
    options = ClientOptions(
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        sleep=lambda s: None,
        bot_login="perf-bot",
    )
    with Session(TOKEN, options) as s:
        yield s


def _target(run: int = 100, attempt: int = 1) -> CheckTarget:
    return CheckTarget(
        f"{OWNER}/{NAME}", HEAD, run, attempt, RUN_URL.format(run=run, attempt=attempt)
    )


def _latest(fake: FakeGitHub) -> dict[str, object]:
    """What GitHub shows for the check: the newest check run of that name on the commit."""
    return [r for r in fake.runs_on(HEAD) if r["name"] == CHECK_NAME][-1]


def test_start_is_in_progress_and_links_the_run(fake: FakeGitHub, session: Session) -> None:
    result = start_check(session, _target(), STARTED)
    (run,) = fake.check_runs
    assert result.created
    assert result.check_run_id == run["id"]
    assert run["name"] == "perf/gate"
    assert run["status"] == "in_progress"
    assert run["conclusion"] is None
    assert run["head_sha"] == HEAD
    assert run["external_id"] == "perfci/100/1"
    assert run["details_url"] == RUN_URL.format(run=100, attempt=1)
    assert run["output"] == {"title": "Measuring base and candidate", "summary": "In progress."}


@pytest.mark.parametrize(
    ("conclusion", "title"),
    [
        ("success", "PASS: no primary metric worse"),
        ("failure", "FAIL: latency p95 +12.0 %"),
        ("neutral", "INCONCLUSIVE after 36 pairs"),
    ],
    ids=["pass", "fail", "inconclusive"],
)
def test_start_then_conclude_updates_the_same_check_run(
    fake: FakeGitHub, session: Session, conclusion: Conclusion, title: str
) -> None:
    start_check(session, _target(), STARTED)
    result = conclude_check(session, _target(), conclusion, CheckText(title, "details"))
    (run,) = fake.check_runs
    assert not result.created
    assert run["status"] == "completed"
    assert run["conclusion"] == conclusion == result.conclusion
    assert run["output"]["title"] == title
    assert run["completed_at"]


@pytest.mark.parametrize(
    "reason",
    [
        "The perf-pr run failed before a verdict (step 'A/B base vs candidate')",
        "The perf-pr run was cancelled",
        "The perf-pr run timed out",
    ],
    ids=["crash", "cancel", "timeout"],
)
def test_a_broken_perf_job_ends_the_check_as_failure(
    fake: FakeGitHub, session: Session, reason: str
) -> None:
    start_check(session, _target(), STARTED)
    conclude_check(session, _target(), "failure", CheckText(reason, f"{reason}. See the run."))
    (run,) = fake.check_runs
    assert run["conclusion"] == "failure"
    assert run["output"]["title"] == reason
    assert run["details_url"] == RUN_URL.format(run=100, attempt=1)


def test_a_rerun_gets_a_new_check_run_that_replaces_the_old(
    fake: FakeGitHub, session: Session
) -> None:
    start_check(session, _target(attempt=1), STARTED)
    conclude_check(session, _target(attempt=1), "failure", CheckText("crashed", "x"))
    second = start_check(session, _target(attempt=2), STARTED)
    assert second.created
    assert len(fake.check_runs) == 2
    assert _latest(fake)["status"] == "in_progress"
    assert _latest(fake)["external_id"] == "perfci/100/2"
    assert fake.check_runs[0]["conclusion"] == "failure"  # history kept, not rewritten
    conclude_check(session, _target(attempt=2), "success", CheckText("PASS", "ok"))
    assert len(fake.check_runs) == 2
    assert _latest(fake)["conclusion"] == "success"
    assert _latest(fake)["details_url"] == RUN_URL.format(run=100, attempt=2)


def test_a_rerun_closes_an_attempt_left_open(fake: FakeGitHub, session: Session) -> None:
    start_check(session, _target(attempt=1), STARTED)  # its completion never arrived
    result = start_check(session, _target(attempt=2), STARTED)
    first, second = fake.check_runs
    assert result.superseded == (first["id"],)
    assert first["status"] == "completed"
    assert first["conclusion"] == "cancelled"  # never a pass left behind
    assert "Superseded by run 100 attempt 2" in first["output"]["title"]
    assert second["status"] == "in_progress"


def test_a_late_end_of_an_old_attempt_never_hides_the_new_one(
    fake: FakeGitHub, session: Session
) -> None:
    start_check(session, _target(attempt=1), STARTED)
    start_check(session, _target(attempt=2), STARTED)
    late = conclude_check(session, _target(attempt=1), "failure", CheckText("cancelled", "x"))
    assert late.stale
    assert len(fake.check_runs) == 2
    assert _latest(fake)["external_id"] == "perfci/100/2"
    assert _latest(fake)["status"] == "in_progress"


def test_a_newer_run_of_the_same_commit_wins_over_an_older_run(
    fake: FakeGitHub, session: Session
) -> None:
    start_check(session, _target(run=100), STARTED)
    start_check(session, _target(run=101), STARTED)  # e.g. the PR was closed and reopened
    late = conclude_check(session, _target(run=100), "failure", CheckText("cancelled", "x"))
    assert late.stale
    assert _latest(fake)["external_id"] == "perfci/101/1"


def test_duplicate_events_write_nothing_twice(fake: FakeGitHub, session: Session) -> None:
    start_check(session, _target(), STARTED)
    again = start_check(session, _target(), STARTED)
    assert not again.created
    conclude_check(session, _target(), "success", CheckText("PASS", "ok"))
    same = conclude_check(session, _target(), "success", CheckText("PASS", "ok"))
    assert not same.created
    assert len(fake.check_runs) == 1
    assert fake.paths("PATCH") == [f"{fake.prefix}/repos/{OWNER}/{NAME}/check-runs/1001"]


def test_the_end_arriving_first_still_gives_one_completed_check(
    fake: FakeGitHub, session: Session
) -> None:
    conclude_check(session, _target(), "failure", CheckText("crashed", "x"))
    start_check(session, _target(), STARTED)  # the start event, processed late
    (run,) = fake.check_runs
    assert run["status"] == "completed"
    assert run["conclusion"] == "failure"


def test_concluding_a_completed_attempt_differently_adds_a_newer_check_run(
    fake: FakeGitHub, session: Session
) -> None:
    # GitHub refuses to change a completed check run (the fake answers 422 like it).
    start_check(session, _target(), STARTED)
    conclude_check(session, _target(), "failure", CheckText("artifact missing", "x"))
    fixed = conclude_check(session, _target(), "success", CheckText("PASS", "ok"))
    assert fixed.created
    assert [r["conclusion"] for r in fake.check_runs] == ["failure", "success"]


def test_a_5xx_after_the_check_run_was_created_does_not_duplicate_it(
    fake: FakeGitHub, session: Session
) -> None:
    fake.faults.append(Fault("POST", "/check-runs$", 502, "Bad Gateway", carry_out=True))
    result = start_check(session, _target(), STARTED)
    assert len(fake.check_runs) == 1
    assert result.check_run_id == fake.check_runs[0]["id"]
    assert len(fake.paths("POST")) == 1


def test_a_5xx_before_the_check_run_was_created_is_retried(
    fake: FakeGitHub, session: Session
) -> None:
    fake.faults.append(Fault("POST", "/check-runs$", 500, "Server Error"))
    start_check(session, _target(), STARTED)
    assert len(fake.check_runs) == 1
    assert len(fake.paths("POST")) == 2


def test_permission_denied_is_a_post_error(fake: FakeGitHub, session: Session) -> None:
    fake.faults.append(Fault("POST", "/check-runs$", 403, "Resource not accessible by integration"))
    with pytest.raises(PostError, match="HTTP 403: Resource not accessible by integration"):
        start_check(session, _target(), STARTED)
    assert fake.check_runs == []


def test_long_titles_are_cut_and_oversized_summaries_refused() -> None:
    assert len(str(CheckText("x" * 400, "s").output()["title"])) == 255
    with pytest.raises(PostError, match="GitHub allows 65535"):
        CheckText("t", "s" * 70_000)
    with pytest.raises(PostError, match="needs a title"):
        CheckText("  ", "s")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repo": "nobody"}, "owner/name"),
        ({"head_sha": "HEAD"}, "40-digit"),
        ({"run_id": 0}, "must be positive"),
        ({"run_attempt": 0}, "must be positive"),
    ],
)
def test_bad_targets(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"repo": "a/b", "head_sha": HEAD, "run_id": 1, "run_attempt": 1}
    values.update(kwargs)
    with pytest.raises(PostError, match=message):
        CheckTarget(**values)  # type: ignore[arg-type]
