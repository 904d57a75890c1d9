"""ci.post.client against the local GitHub-like server: bounded waits, retries, the login."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from ci.errors import PostError
from ci.post.client import ClientOptions, Session
from tests.ci.post.fake_github import BOT, NAME, OWNER, TOKEN, FakeGitHub, Fault, serve

NOW = 1_800_000_000.0


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    with serve(request.param) as state:
        yield state


def _session(fake: FakeGitHub, slept: list[float], **kwargs: object) -> Session:
    options = ClientOptions(
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        sleep=slept.append,
        clock=lambda: NOW,
        **kwargs,  # type: ignore[arg-type]
    )
    return Session(TOKEN, options)


def _read_repo(session: Session) -> str:
    return session.call("reading", lambda: session.gh.get_repo(f"{OWNER}/{NAME}").full_name)


def test_a_rate_limit_within_max_wait_is_waited_out(fake: FakeGitHub) -> None:
    fake.faults.append(
        Fault(
            "GET",
            "/repos/",
            403,
            "You have exceeded a secondary rate limit",
            {"Retry-After": "7"},
        )
    )
    slept: list[float] = []
    with _session(fake, slept) as session:
        assert _read_repo(session) == f"{OWNER}/{NAME}"
        assert session.waited == [7.0]
    assert slept == [7.0]
    assert len(fake.paths("GET")) == 2


def test_a_rate_limit_longer_than_max_wait_is_a_clear_error(fake: FakeGitHub) -> None:
    reset = str(int(NOW) + 3599)
    fake.faults.append(
        Fault(
            "GET",
            "/repos/",
            403,
            "API rate limit exceeded for installation ID 1.",
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        )
    )
    slept: list[float] = []
    with _session(fake, slept, max_wait=90.0) as session, pytest.raises(PostError) as info:
        _read_repo(session)
    message = str(info.value)
    assert "rate limit while reading" in message
    assert "GitHub asks to wait 3600 s" in message
    assert "longer than the 90 s this command waits" in message
    assert TOKEN not in message
    assert slept == []  # it never started a wait it would not finish
    assert len(fake.paths("GET")) == 1


@pytest.mark.parametrize(("max_wait", "ok"), [(60.0, True), (10.0, False)])
def test_a_secondary_limit_without_headers_waits_a_minute(
    fake: FakeGitHub, max_wait: float, ok: bool
) -> None:
    fake.faults.append(Fault("GET", "/repos/", 429, "Please retry your request again later."))
    slept: list[float] = []
    with _session(fake, slept, max_wait=max_wait) as session:
        if ok:
            assert _read_repo(session) == f"{OWNER}/{NAME}"
            assert slept == [60.0]
        else:
            with pytest.raises(PostError, match="GitHub asks to wait 60 s"):
                _read_repo(session)
            assert slept == []


def test_rate_limit_waits_are_bounded_in_number(fake: FakeGitHub) -> None:
    fake.faults.append(
        Fault("GET", "/repos/", 403, "secondary rate limit", {"Retry-After": "1"}, times=50)
    )
    slept: list[float] = []
    with _session(fake, slept, attempts=3) as session, pytest.raises(PostError, match="HTTP 403"):
        _read_repo(session)
    assert slept == [1.0, 1.0, 1.0]
    assert len(fake.paths("GET")) == 4


def test_a_5xx_on_a_read_is_retried_with_growing_pauses(fake: FakeGitHub) -> None:
    fake.faults.append(Fault("GET", "/repos/", 502, "Bad Gateway", times=2))
    slept: list[float] = []
    with _session(fake, slept, attempts=3, backoff=0.5) as session:
        assert _read_repo(session) == f"{OWNER}/{NAME}"
    assert slept == [0.5, 1.0]


def test_a_5xx_that_persists_is_a_post_error(fake: FakeGitHub) -> None:
    fake.faults.append(Fault("GET", "/repos/", 503, "Service Unavailable", times=9))
    slept: list[float] = []
    with _session(fake, slept, attempts=2) as session, pytest.raises(PostError) as info:
        _read_repo(session)
    assert "HTTP 503: Service Unavailable" in str(info.value)
    assert len(fake.paths("GET")) == 2


def test_login_from_get_user(fake: FakeGitHub) -> None:
    with _session(fake, []) as session:
        assert session.login() == BOT
        assert session.login() == BOT  # asked once
    assert fake.paths("GET").count(f"{fake.prefix}/user") == 1


def test_login_of_an_installation_token_from_graphql(fake: FakeGitHub) -> None:
    fake.installation_token = True
    fake.viewer_login = "perf-app"  # GraphQL names a bot without "[bot]"
    with _session(fake, []) as session:
        assert session.login() == "perf-app[bot]"  # the REST name of the app's bot
        assert session.owns(SimpleNamespace(login="perf-app[bot]", type="Bot"))
        assert not session.owns(SimpleNamespace(login="perf-app", type="User"))
        assert not session.owns(SimpleNamespace(login="perf-app[bot]", type="User"))
        assert not session.owns(SimpleNamespace(login="perf-app-other[bot]", type="Bot"))
        assert not session.owns(None)
    graphql = fake.prefix.removesuffix("/v3") + "/graphql"
    assert fake.paths("POST") == [graphql]


def test_an_explicit_login_asks_nothing(fake: FakeGitHub) -> None:
    with _session(fake, [], bot_login="github-actions[bot]") as session:
        assert session.owns(SimpleNamespace(login="GitHub-Actions[bot]", type="Bot"))
        assert not session.owns(SimpleNamespace(login="perf-bot", type="Bot"))
    assert fake.requests == []


def test_unknown_login_is_a_clear_error(fake: FakeGitHub) -> None:
    fake.installation_token = True
    fake.faults.append(Fault("POST", "graphql", 403, "Resource not accessible by integration"))
    with _session(fake, []) as session, pytest.raises(PostError) as info:
        session.login()
    message = str(info.value)
    assert "cannot tell which account this token writes as" in message
    assert "--bot-login" in message
    assert "github-actions[bot]" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts = 0"),
        ({"max_wait": -1.0}, "waits must be >= 0"),
        ({"timeout": 0.0}, "the timeout > 0"),
    ],
)
def test_bad_options(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(PostError, match=message):
        ClientOptions(**kwargs)  # type: ignore[arg-type]


def test_a_session_needs_a_token() -> None:
    with pytest.raises(PostError, match="no GitHub token"):
        Session("")
