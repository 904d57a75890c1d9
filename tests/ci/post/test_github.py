"""ci.post against a local server that answers like GitHub's REST API.

Only the endpoints PyGithub calls for post_comment are served; anything else is a 404 and
is recorded, so an unexpected request shows up in the assertions.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ci.errors import PostError
from ci.post.github import post_comment
from ci.render.markdown import MARKER

OWNER, NAME, PR, HEAD = "acme", "search", 17, "a" * 40
TOKEN = "ghp_secretsecretsecret"
STAMP = "2026-11-27T10:00:00Z"


@dataclass
class FakeGitHub:
    prefix: str
    base: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)
    fail_with: tuple[int, str] | None = None
    next_id: int = 1000

    def repo_url(self) -> str:
        return f"{self.base}/repos/{OWNER}/{NAME}"

    def comment(self, body: str) -> dict[str, Any]:
        self.next_id += 1
        cid = self.next_id
        return {
            "id": cid,
            "node_id": f"IC_{cid}",
            "url": f"{self.repo_url()}/issues/comments/{cid}",
            "html_url": f"https://github.example/{OWNER}/{NAME}/pull/{PR}#issuecomment-{cid}",
            "issue_url": f"{self.repo_url()}/issues/{PR}",
            "body": body,
            "user": {"login": "perf-bot", "id": 1, "type": "Bot"},
            "created_at": STAMP,
            "updated_at": STAMP,
        }


PAGE = 30


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            assert isinstance(data, dict)
            return data

        def _route(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            state.requests.append((method, url.path))
            state.auth.add(self.headers.get("Authorization", ""))
            if state.fail_with is not None:
                code, message = state.fail_with
                self._send(code, {"message": message, "documentation_url": "https://docs"})
                return
            if not url.path.startswith(state.prefix + "/"):
                self._send(404, {"message": "Not Found"})
                return
            path = url.path[len(state.prefix) :]
            repo = f"/repos/{OWNER}/{NAME}"
            query = urllib.parse.parse_qs(url.query)
            if method == "GET" and path == repo:
                self._send(
                    200,
                    {
                        "id": 1,
                        "node_id": "R_1",
                        "name": NAME,
                        "full_name": f"{OWNER}/{NAME}",
                        "url": state.repo_url(),
                        "html_url": f"https://github.example/{OWNER}/{NAME}",
                        "owner": {"login": OWNER, "id": 2, "type": "Organization"},
                        "private": False,
                    },
                )
            elif method == "GET" and path == f"{repo}/pulls/{PR}":
                self._send(
                    200,
                    {
                        "id": 99,
                        "node_id": "PR_99",
                        "number": PR,
                        "state": "open",
                        "title": "Faster cache",
                        "url": f"{state.repo_url()}/pulls/{PR}",
                        "issue_url": f"{state.repo_url()}/issues/{PR}",
                        "html_url": f"https://github.example/{OWNER}/{NAME}/pull/{PR}",
                        "head": {"sha": HEAD, "ref": "feature", "label": "acme:feature"},
                        "base": {"sha": "b" * 40, "ref": "main", "label": "acme:main"},
                        "user": {"login": "dev", "id": 3},
                        "created_at": STAMP,
                        "updated_at": STAMP,
                    },
                )
            elif method == "GET" and path.startswith(f"{repo}/commits/"):
                # PyGithub completes the lazy Commit (for its sha) before posting a status.
                sha = path.rsplit("/", 1)[1]
                self._send(
                    200,
                    {
                        "sha": sha,
                        "node_id": f"C_{sha}",
                        "url": f"{state.repo_url()}/commits/{sha}",
                        "html_url": f"https://github.example/{OWNER}/{NAME}/commit/{sha}",
                        "commit": {
                            "message": "change",
                            "url": f"{state.repo_url()}/git/commits/{sha}",
                        },
                        "parents": [],
                    },
                )
            elif method == "GET" and path == f"{repo}/issues/{PR}/comments":
                page = int(query.get("page", ["1"])[0])
                items = state.comments[(page - 1) * PAGE : page * PAGE]
                headers = {}
                if page * PAGE < len(state.comments):
                    nxt = f"{state.repo_url()}/issues/{PR}/comments?page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, items, headers)
            elif method == "POST" and path == f"{repo}/issues/{PR}/comments":
                item = state.comment(self._body()["body"])
                state.comments.append(item)
                self._send(201, item)
            elif method == "PATCH" and path.startswith(f"{repo}/issues/comments/"):
                cid = int(path.rsplit("/", 1)[1])
                found: dict[str, Any] | None = next(
                    (c for c in state.comments if c["id"] == cid), None
                )
                if found is None:
                    self._send(404, {"message": "Not Found"})
                    return
                found["body"] = self._body()["body"]
                found["updated_at"] = "2026-11-27T11:00:00Z"
                self._send(200, found)
            elif method == "POST" and path.startswith(f"{repo}/statuses/"):
                sha = path.rsplit("/", 1)[1]
                body = self._body()
                state.statuses.append((sha, body))
                self._send(
                    201,
                    {
                        "id": len(state.statuses),
                        "url": f"{state.repo_url()}/statuses/{sha}",
                        "state": body["state"],
                        "context": body.get("context"),
                        "description": body.get("description"),
                        "target_url": body.get("target_url"),
                        "created_at": STAMP,
                        "updated_at": STAMP,
                    },
                )
            else:
                self._send(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeGitHub]:
    state = FakeGitHub(prefix=request.param)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}{state.prefix}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _post(fake: FakeGitHub, body: str, **kwargs: Any) -> Any:
    return post_comment(
        f"{OWNER}/{NAME}",
        PR,
        body,
        TOKEN,
        api_url=fake.base,
        seconds_between_requests=0,
        seconds_between_writes=0,
        **kwargs,
    )


def test_first_run_creates_second_run_edits(fake: FakeGitHub) -> None:
    first = _post(fake, f"{MARKER}\nfirst", state="failure", description="2 regressions")
    assert first.created
    assert len(fake.comments) == 1
    assert first.comment_id == fake.comments[0]["id"]
    second = _post(fake, f"{MARKER}\nsecond", state="success", description="pass")
    assert not second.created
    assert second.comment_id == first.comment_id
    assert len(fake.comments) == 1
    assert fake.comments[0]["body"] == f"{MARKER}\nsecond"
    assert fake.statuses == [
        (HEAD, {"state": "failure", "description": "2 regressions", "context": "perf/gate"}),
        (HEAD, {"state": "success", "description": "pass", "context": "perf/gate"}),
    ]
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
    assert not fake.statuses  # no state given: no status


def test_explicit_sha_description_and_target_url(fake: FakeGitHub) -> None:
    long = "x" * 500
    _post(fake, MARKER, sha="c" * 40, state="error", description=long, target_url="https://r/1")
    ((sha, body),) = fake.statuses
    assert sha == "c" * 40
    assert body["target_url"] == "https://r/1"
    assert len(body["description"]) == 140
    assert body["description"].endswith("\u2026")


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
    with pytest.raises(PostError, match="cannot reach"):
        post_comment("a/b", 1, MARKER, TOKEN, api_url="http://127.0.0.1:9/api/v3", timeout=2)


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
    with pytest.raises(PostError, match=message):
        post_comment(repo, pr, body, TOKEN, api_url="http://127.0.0.1:9")
