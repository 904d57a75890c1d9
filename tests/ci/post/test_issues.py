"""ci.post.issues against the local GitHub-like server: open, update, close, never twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ci.post.client import ClientOptions, Session
from ci.post.issues import IssueText, sync_issues
from tests.ci.post.fake_github import BOT, NAME, OWNER, TOKEN, FakeGitHub, Fault, serve

REPO = f"{OWNER}/{NAME}"
LABEL = "perf-regression"
TID = "perfci-history-regression:0123456789abcdef0123"


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    with serve(request.param) as state:
        yield state


def _session(fake: FakeGitHub) -> Session:
    options = ClientOptions(
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        sleep=lambda _s: None,
    )
    return Session(TOKEN, options)


def _open(body: str = "regressed", title: str = "Performance regression") -> IssueText:
    return IssueText(TID, "open", title, f"<!-- {TID} -->\n{body}\n", "")


def _closed(comment: str = "Reverted. Closing.\n") -> IssueText:
    return IssueText(TID, "closed", "", "", comment)


def _sync(fake: FakeGitHub, *wanted: IssueText) -> list[tuple[str, int]]:
    with _session(fake) as session:
        return [(o.action, o.number) for o in sync_issues(session, REPO, LABEL, wanted)]


def test_a_regression_opens_one_labelled_issue_and_later_runs_keep_it(fake: FakeGitHub) -> None:
    ((action, number),) = _sync(fake, _open())
    assert action == "created"
    (issue,) = fake.issues
    assert issue["number"] == number
    assert [label["name"] for label in issue["labels"]] == [LABEL]
    assert issue["user"]["login"] == BOT
    assert _sync(fake, _open()) == [("unchanged", number)]
    assert _sync(fake, _open("regressed further")) == [("updated", number)]
    assert len(fake.issues) == 1
    assert fake.issues[0]["body"] == f"<!-- {TID} -->\nregressed further\n"


def test_a_revert_comments_and_closes_the_issue(fake: FakeGitHub) -> None:
    ((_, number),) = _sync(fake, _open())
    assert _sync(fake, _closed()) == [("closed", number)]
    issue = fake.issues[0]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert [c["body"] for c in fake.issue_comments[number]] == ["Reverted. Closing.\n"]
    # nothing open any more: a further run does nothing
    assert _sync(fake, _closed()) == []
    # and a new regression later gets a new issue
    assert _sync(fake, _open())[0][0] == "created"
    assert len(fake.issues) == 2


def test_an_issue_someone_else_wrote_with_the_marker_is_left_alone(fake: FakeGitHub) -> None:
    fake.issues.append(fake.issue(f"<!-- {TID} -->\nfake", "spoof", [LABEL], login="mallory"))
    ((action, number),) = _sync(fake, _open())
    assert action == "created"
    assert number != fake.issues[0]["number"]
    _sync(fake, _closed())
    assert fake.issues[0]["state"] == "open"  # not ours: never closed
    assert fake.issues[0]["body"] == f"<!-- {TID} -->\nfake"


def test_a_failed_create_that_landed_is_adopted_not_repeated(fake: FakeGitHub) -> None:
    fake.faults.append(Fault("POST", r"/issues$", 502, "Bad Gateway", carry_out=True))
    ((action, number),) = _sync(fake, _open())
    assert action == "created"
    assert len(fake.issues) == 1
    assert fake.issues[0]["number"] == number
    assert fake.paths("POST").count(fake.prefix + f"/repos/{OWNER}/{NAME}/issues") == 1


def test_a_failed_closing_comment_that_landed_is_not_posted_twice(fake: FakeGitHub) -> None:
    ((_, number),) = _sync(fake, _open())
    fake.faults.append(Fault("POST", rf"/issues/{number}/comments$", 500, carry_out=True))
    assert _sync(fake, _closed()) == [("closed", number)]
    assert len(fake.issue_comments[number]) == 1
