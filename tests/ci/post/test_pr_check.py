"""perf-comment's whole job against the local GitHub-like server: one event in, check and
comment out (ci.post.pr_check), for pass, fail, inconclusive, crash, cancel and re-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateDecision
from ci.post.client import ClientOptions, Session
from ci.post.pr_check import handle_event
from ci.render.gate import MARKER
from tests.ci.post.fake_github import BOT, HEAD, PR, TOKEN, FakeGitHub, Fault, serve
from tests.ci.post.gate_artifacts import RULE, artifact, event


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    with serve(request.param) as state:
        state.artifacts[100] = ["perf-pr"]
        yield state


@pytest.fixture
def session(fake: FakeGitHub) -> Iterator[Session]:
    options = ClientOptions(
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        sleep=lambda s: None,
        bot_login=BOT,
    )
    with Session(TOKEN, options) as s:
        yield s


def _check(fake: FakeGitHub) -> dict[str, object]:
    """What GitHub shows: the newest perf/gate check run on the head commit."""
    return fake.runs_on(HEAD)[-1]


@pytest.mark.parametrize(
    ("decision", "conclusion"),
    [("pass", "success"), ("fail", "failure"), ("inconclusive", "neutral")],
)
def test_start_then_verdict(
    fake: FakeGitHub,
    session: Session,
    tmp_path: Path,
    decision: GateDecision,
    conclusion: str,
) -> None:
    started = handle_event(session, event(action="requested"), None, RULE)
    assert started.ok
    assert _check(fake)["status"] == "in_progress"
    report = handle_event(session, event(), artifact(tmp_path, decision), RULE)
    assert report.ok, report.errors
    (run,) = fake.check_runs
    assert run["status"] == "completed"
    assert run["conclusion"] == conclusion
    assert str(run["details_url"]).endswith("/actions/runs/100/attempts/1")
    (comment,) = fake.comments
    assert comment["body"].startswith(f"{MARKER}\n**Performance gate: {decision.upper()}")
    assert "/actions/runs/100/artifacts/9000" in comment["body"]  # the artifact link
    assert f"/issues/{PR}/comments" in " ".join(fake.paths("POST"))


def test_a_team_that_says_dont_know_fails_gets_a_failing_check(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    # perf.toml [gate] inconclusive = "failure" on the default branch, and the run judged by it
    strict = msgspec.structs.replace(RULE, inconclusive="failure")
    report = handle_event(session, event(), artifact(tmp_path, "inconclusive", rule=strict), strict)
    assert report.ok, report.errors
    (run,) = fake.check_runs
    assert run["conclusion"] == "failure"
    (comment,) = fake.comments
    assert "**Performance gate: INCONCLUSIVE" in comment["body"]
    assert (
        "policy gate\\.inconclusive = 'failure'\\: an undecided verdict ends the check as failure"
        in (comment["body"])
    )


@pytest.mark.parametrize("conclusion", ["failure", "cancelled", "timed_out"])
def test_a_broken_run_fails_the_check_and_says_so(
    fake: FakeGitHub, session: Session, tmp_path: Path, conclusion: str
) -> None:
    handle_event(session, event(action="requested"), None, RULE)
    report = handle_event(session, event(conclusion), artifact(tmp_path, None), RULE)
    assert report.ok
    run = _check(fake)
    assert run["conclusion"] == "failure"
    assert "perf-pr run" in str(run["output"])
    (comment,) = fake.comments  # pr.json was uploaded before the crash: the PR is known
    assert "never passes" in comment["body"]


def test_a_cancelled_fork_run_without_artifact_still_ends_the_check(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    handle_event(session, event(action="requested"), None, RULE)
    report = handle_event(
        session, event("cancelled"), GateFolder(tmp_path / "not-downloaded"), RULE
    )
    assert report.ok
    assert _check(fake)["conclusion"] == "failure"
    assert fake.comments == []
    assert any("no comment" in n for n in report.notes)


def test_a_rerun_replaces_what_the_first_attempt_wrote(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    handle_event(session, event(action="requested"), None, RULE)
    handle_event(session, event(), artifact(first, "fail"), RULE)
    handle_event(session, event(action="requested", attempt=2), None, RULE)
    assert _check(fake)["status"] == "in_progress"
    report = handle_event(session, event(attempt=2), artifact(second, "pass", run_attempt=2), RULE)
    assert report.ok
    assert [r["conclusion"] for r in fake.check_runs] == ["failure", "success"]
    (comment,) = fake.comments  # edited in place, not a second comment
    assert "PASS" in comment["body"]


def test_a_stale_artifact_of_the_first_attempt_is_not_taken_for_the_second(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    report = handle_event(session, event(attempt=2), artifact(tmp_path, "pass"), RULE)
    assert _check(fake)["conclusion"] == "failure"
    assert any("stale artifact" in n for n in report.notes)


def test_the_check_is_set_when_the_comment_fails(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    fake.faults.append(Fault("POST", r"/comments$", 403, "Unable to create comment: locked"))
    report = handle_event(session, event(), artifact(tmp_path, "pass"), RULE)
    assert not report.ok
    assert report.errors[0].startswith("comment: ")
    assert _check(fake)["conclusion"] == "success"


def test_the_comment_is_posted_when_the_check_fails(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    fake.faults.append(Fault("POST", r"/check-runs$", 403, "Resource not accessible"))
    report = handle_event(session, event(), artifact(tmp_path, "fail"), RULE)
    assert not report.ok
    assert report.errors[0].startswith("check run: ")
    assert len(fake.comments) == 1


def test_a_pr_whose_head_moved_on_gets_its_check_but_no_comment(
    fake: FakeGitHub, session: Session, tmp_path: Path
) -> None:
    fake.pull_head = "f" * 40
    report = handle_event(session, event(), artifact(tmp_path, "pass"), RULE)
    assert report.ok
    assert _check(fake)["conclusion"] == "success"
    assert fake.comments == []
    assert any("not commenting" in n for n in report.notes)
