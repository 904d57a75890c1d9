"""ci.post.github against the local server that answers like GitHub's REST API
(tests/ci/post/fake_github.py): anything it does not serve is a 404 and is recorded, so an
unexpected request shows up in the assertions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ci.errors import PostError
from ci.post.client import ClientOptions, Session
from ci.post.github import StalePullRequest, artifact_url, upsert_comment
from ci.render.gate import MARKER
from tests.ci.post.fake_github import (
    BOT,
    HEAD,
    NAME,
    OWNER,
    PR,
    TOKEN,
    FakeGitHub,
    Fault,
    serve,
)


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    with serve(request.param) as state:
        yield state


def _post(fake: FakeGitHub, body: str, **kwargs: Any) -> Any:
    kwargs.setdefault("bot_login", BOT)  # the token's account, known: no GET /user
    with _session(fake, **kwargs) as session:
        return upsert_comment(session, f"{OWNER}/{NAME}", PR, body)


def test_first_run_creates_second_run_edits(fake: FakeGitHub) -> None:
    first = _post(fake, f"{MARKER}\nfirst")
    assert first.created
    assert len(fake.comments) == 1
    assert first.comment_id == fake.comments[0]["id"]
    second = _post(fake, f"{MARKER}\nsecond")
    assert not second.created
    assert second.comment_id == first.comment_id
    assert len(fake.comments) == 1
    assert fake.comments[0]["body"] == f"{MARKER}\nsecond"
    assert second.sha == HEAD
    assert {a for a in fake.auth} == {f"token {TOKEN}"}
    assert all(path.startswith(fake.prefix + "/repos/") for _, path in fake.requests)


def test_marker_found_on_a_later_page(fake: FakeGitHub) -> None:
    for i in range(65):
        fake.comments.append(fake.comment(f"unrelated comment {i}"))
    fake.comments.append(fake.comment(f"{MARKER}\nold report"))
    outcome = _post(fake, f"{MARKER}\nnew report")
    assert not outcome.created
    assert outcome.comment_id == fake.comments[-1]["id"]
    assert fake.comments[-1]["body"] == f"{MARKER}\nnew report"
    assert len(fake.comments) == 66
    pages = [p for m, p in fake.requests if m == "GET" and p.endswith("/comments")]
    assert len(pages) == 3


def test_api_error_becomes_post_error_without_token(fake: FakeGitHub) -> None:
    fake.fail_with = (403, "Resource not accessible by integration")
    with pytest.raises(PostError) as info:
        _post(fake, MARKER)
    message = str(info.value)
    assert "HTTP 403" in message
    assert "Resource not accessible by integration" in message
    assert "reading" in message
    assert TOKEN not in message
    assert TOKEN not in repr(info.value.__cause__)


def test_unreachable_server_is_a_post_error() -> None:
    options = ClientOptions(api_url="http://127.0.0.1:9/api/v3", timeout=2, bot_login=BOT)
    with Session(TOKEN, options) as session, pytest.raises(PostError, match="cannot reach"):
        upsert_comment(session, "a/b", 1, MARKER)


@pytest.mark.parametrize(
    ("repo", "pr", "body", "message"),
    [
        ("nobody", 1, MARKER, "must be given as owner/name"),
        ("a/b", 0, MARKER, "must be positive"),
        ("a/b", 1, "no marker", "lacks the marker"),
        ("a/b", 1, MARKER + "x" * 70_000, "GitHub allows 65536"),
    ],
)
def test_bad_arguments(repo: str, pr: int, body: str, message: str) -> None:
    options = ClientOptions(api_url="http://127.0.0.1:9", bot_login=BOT)
    with Session(TOKEN, options) as session, pytest.raises(PostError, match=message):
        upsert_comment(session, repo, pr, body)


def _session(fake: FakeGitHub, **kwargs: Any) -> Session:
    options = ClientOptions(
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        sleep=lambda s: None,
        **kwargs,
    )
    return Session(TOKEN, options)


def test_a_marked_comment_by_someone_else_is_never_adopted(fake: FakeGitHub) -> None:
    planted = fake.comment(f"{MARKER}\nplanted by a contributor", login="mallory", kind="User")
    fake.comments.append(planted)
    outcome = _post(fake, f"{MARKER}\nreport", bot_login=None)  # the login looked up
    assert outcome.created
    assert len(fake.comments) == 2
    assert planted["body"] == f"{MARKER}\nplanted by a contributor"  # untouched
    assert fake.comments[1]["user"]["login"] == BOT
    assert f"{fake.prefix}/user" in fake.paths("GET")
    assert fake.paths("PATCH") == []
    again = _post(fake, f"{MARKER}\nsecond report", bot_login=None)
    assert not again.created
    assert again.comment_id == fake.comments[1]["id"]
    assert planted["body"] == f"{MARKER}\nplanted by a contributor"


def test_an_installation_tokens_own_bot_comment_is_found(fake: FakeGitHub) -> None:
    fake.installation_token = True  # GET /user: 403, as for GITHUB_TOKEN
    fake.login = "github-actions[bot]"
    fake.viewer_login = "github-actions"  # GraphQL names the bot without "[bot]"
    ours = fake.comment(f"{MARKER}\nold", login="github-actions[bot]", kind="Bot")
    fake.comments += [fake.comment(f"{MARKER}\nhuman", login="github-actions", kind="User"), ours]
    outcome = _post(fake, f"{MARKER}\nnew", bot_login=None)
    assert not outcome.created
    assert outcome.comment_id == ours["id"]
    assert fake.comments[0]["body"] == f"{MARKER}\nhuman"


def test_a_5xx_after_the_comment_landed_does_not_post_a_duplicate(fake: FakeGitHub) -> None:
    fake.faults.append(Fault("POST", r"/issues/\d+/comments$", 502, "Bad Gateway", carry_out=True))
    outcome = _post(fake, f"{MARKER}\nreport")
    assert len(fake.comments) == 1
    assert outcome.adopted
    assert outcome.comment_id == fake.comments[0]["id"]
    assert len([p for p in fake.paths("POST") if p.endswith("/comments")]) == 1


def test_a_5xx_before_the_comment_landed_is_retried_once(fake: FakeGitHub) -> None:
    fake.faults.append(Fault("POST", r"/issues/\d+/comments$", 503, "Service Unavailable"))
    outcome = _post(fake, f"{MARKER}\nreport")
    assert len(fake.comments) == 1
    assert outcome.created
    assert not outcome.adopted
    assert len([p for p in fake.paths("POST") if p.endswith("/comments")]) == 2


def test_rate_limit_on_the_comment_is_bounded(fake: FakeGitHub) -> None:
    fake.faults.append(
        Fault("POST", r"/comments$", 403, "secondary rate limit", {"Retry-After": "900"})
    )
    with pytest.raises(PostError, match="GitHub asks to wait 900 s"):
        _post(fake, f"{MARKER}\nreport", max_wait=60.0)
    assert fake.comments == []


def test_a_pull_request_that_moved_on_gets_no_comment(fake: FakeGitHub) -> None:
    fake.pull_head = "f" * 40
    with _session(fake, bot_login=BOT) as session, pytest.raises(StalePullRequest) as info:
        upsert_comment(session, f"{OWNER}/{NAME}", PR, f"{MARKER}\nx", expect_head=HEAD)
    assert "has head ffffffffffff, but the run tested aaaaaaaaaaaa" in str(info.value)
    assert fake.comments == []


def test_unchanged_body_is_not_rewritten(fake: FakeGitHub) -> None:
    _post(fake, f"{MARKER}\nsame")
    _post(fake, f"{MARKER}\nsame")
    assert fake.paths("PATCH") == []


def test_artifact_url(fake: FakeGitHub) -> None:
    fake.artifacts[100] = ["other", "perf-pr"]
    with _session(fake) as session:
        url = artifact_url(session, f"{OWNER}/{NAME}", 100, "perf-pr", "https://github.example")
        assert url == f"https://github.example/{OWNER}/{NAME}/actions/runs/100/artifacts/9001"
        fake.artifacts[101] = []
        assert artifact_url(session, f"{OWNER}/{NAME}", 101, "perf-pr", "https://x") is None
