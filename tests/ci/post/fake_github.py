"""A local server that answers like GitHub's REST API, for the comment and check-run flows.

Only the endpoints ci.post calls are served (issues too, for ci.post.issues); anything else
is a 404 and is recorded, so an unexpected request shows up in the assertions. It behaves
like GitHub where the code under test depends on it: pagination by ``Link`` headers,
comments carry their author, a completed check run cannot be changed (422), ``GET /user``
is refused to an installation token, and ``faults`` script failures (a 5xx after the
request was carried out, a rate limit).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OWNER, NAME, PR, HEAD = "acme", "search", 17, "a" * 40
TOKEN = "ghp_secretsecretsecret"
STAMP = "2026-11-27T10:00:00Z"
BOT = "perf-bot"
PAGE = 30


@dataclass
class Fault:
    """Answer the next request matching ``method`` and ``path`` (a regex searched in the
    path) with ``status``; ``carry_out`` first does what the request asked (a 5xx after the
    write landed, as a proxy timing out would)."""

    method: str
    path: str
    status: int
    message: str = "Server Error"
    headers: dict[str, str] = field(default_factory=dict)
    carry_out: bool = False
    times: int = 1


@dataclass
class FakeGitHub:
    prefix: str
    base: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)
    fail_with: tuple[int, str] | None = None
    faults: list[Fault] = field(default_factory=list)
    login: str = BOT  # who the token is
    installation_token: bool = False  # GET /user answers 403, as for GITHUB_TOKEN
    viewer_login: str | None = None  # what GraphQL's viewer says (default: login)
    pull_head: str = HEAD
    next_id: int = 1000
    artifacts: dict[int, list[str]] = field(default_factory=dict)  # run id -> artifact names
    issues: list[dict[str, Any]] = field(default_factory=list)  # issues other than the PR
    issue_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def repo_url(self) -> str:
        return f"{self.base}/repos/{OWNER}/{NAME}"

    def comment(self, body: str, login: str = BOT, kind: str = "Bot") -> dict[str, Any]:
        self.next_id += 1
        cid = self.next_id
        return {
            "id": cid,
            "node_id": f"IC_{cid}",
            "url": f"{self.repo_url()}/issues/comments/{cid}",
            "html_url": f"https://github.example/{OWNER}/{NAME}/pull/{PR}#issuecomment-{cid}",
            "issue_url": f"{self.repo_url()}/issues/{PR}",
            "body": body,
            "user": {"login": login, "id": 1, "type": kind},
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def issue(self, body: str, title: str, labels: list[str], login: str = BOT) -> dict[str, Any]:
        number = PR + 100 + len(self.issues)  # never the pull request's number
        return {
            "id": 5000 + number,
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "labels": [{"name": n, "id": i, "color": "ededed"} for i, n in enumerate(labels)],
            "url": f"{self.repo_url()}/issues/{number}",
            "html_url": f"https://github.example/{OWNER}/{NAME}/issues/{number}",
            "comments_url": f"{self.repo_url()}/issues/{number}/comments",
            "user": {"login": login, "id": 9, "type": "Bot" if login == BOT else "User"},
            "created_at": STAMP,
            "updated_at": STAMP,
        }

    def check_run(self, body: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        status = body.get("status", "queued")
        if "conclusion" in body:
            status = "completed"  # GitHub: a conclusion completes the check run
        return {
            "id": rid,
            "node_id": f"CR_{rid}",
            "name": body["name"],
            "head_sha": body["head_sha"],
            "external_id": body.get("external_id", ""),
            "url": f"{self.repo_url()}/check-runs/{rid}",
            "html_url": f"https://github.example/{OWNER}/{NAME}/runs/{rid}",
            "details_url": body.get("details_url"),
            "status": status,
            "conclusion": body.get("conclusion"),
            "started_at": body.get("started_at", STAMP),
            "completed_at": body.get("completed_at"),
            "output": body.get("output", {}),
            "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        }

    def runs_on(self, sha: str = HEAD) -> list[dict[str, Any]]:
        return [r for r in self.check_runs if r["head_sha"] == sha]

    def paths(self, method: str) -> list[str]:
        return [p for m, p in self.requests if m == method]


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

        def _fault(self, method: str, path: str) -> Fault | None:
            for fault in state.faults:
                if fault.method == method and re.search(fault.path, path) and fault.times > 0:
                    fault.times -= 1
                    return fault
            return None

        def _route(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            state.requests.append((method, url.path))
            state.auth.add(self.headers.get("Authorization", ""))
            if state.fail_with is not None:
                code, message = state.fail_with
                self._send(code, {"message": message, "documentation_url": "https://docs"})
                return
            fault = self._fault(method, url.path)
            if fault is not None and not fault.carry_out:
                self._send(fault.status, {"message": fault.message}, fault.headers)
                return
            body = self._body() if method in ("POST", "PATCH") else {}
            code, payload, headers = self._answer(method, url, body)
            if fault is not None:  # the request was carried out; the answer is lost
                self._send(fault.status, {"message": fault.message}, fault.headers)
                return
            self._send(code, payload, headers)

        def _answer(  # one branch per endpoint, like a router table
            self, method: str, url: urllib.parse.SplitResult, body: dict[str, Any]
        ) -> tuple[int, Any, dict[str, str]]:
            graphql = state.prefix.removesuffix("/v3") + "/graphql"
            if method == "POST" and url.path == graphql:
                kind = "Bot" if state.installation_token else "User"
                viewer = {"login": state.viewer_login or state.login, "__typename": kind}
                return 200, {"data": {"viewer": viewer}}, {}
            if not url.path.startswith(state.prefix + "/"):
                return 404, {"message": "Not Found"}, {}
            path = url.path[len(state.prefix) :]
            repo = f"/repos/{OWNER}/{NAME}"
            query = urllib.parse.parse_qs(url.query)
            if method == "GET" and path == "/user":
                if state.installation_token:
                    return 403, {"message": "Resource not accessible by integration"}, {}
                return 200, {"login": state.login, "id": 1, "type": "User"}, {}
            if method == "GET" and path == repo:
                return (
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
                    {},
                )
            if method == "GET" and path == f"{repo}/pulls/{PR}":
                return (
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
                        "head": {"sha": state.pull_head, "ref": "feature", "label": "acme:feature"},
                        "base": {"sha": "b" * 40, "ref": "main", "label": "acme:main"},
                        "user": {"login": "dev", "id": 3},
                        "created_at": STAMP,
                        "updated_at": STAMP,
                    },
                    {},
                )
            match = re.fullmatch(rf"{repo}/commits/([0-9a-f]+)/check-runs", path)
            if method == "GET" and match:
                runs = state.runs_on(match.group(1))
                if "check_name" in query:
                    runs = [r for r in runs if r["name"] == query["check_name"][0]]
                if query.get("filter", ["latest"])[0] == "latest":
                    latest: dict[str, dict[str, Any]] = {}
                    for r in runs:
                        latest[r["name"]] = r
                    runs = list(latest.values())
                return 200, {"total_count": len(runs), "check_runs": runs[::-1]}, {}
            if method == "GET" and path.startswith(f"{repo}/commits/"):
                # repository.get_commit(sha) reads the commit (ci.post.checks lists its runs)
                sha = path.rsplit("/", 1)[1]
                return (
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
                    {},
                )
            if method == "GET" and path == f"{repo}/issues/{PR}/comments":
                page = int(query.get("page", ["1"])[0])
                items = state.comments[(page - 1) * PAGE : page * PAGE]
                headers = {}
                if page * PAGE < len(state.comments):
                    nxt = f"{state.repo_url()}/issues/{PR}/comments?page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                return 200, items, headers
            if method == "POST" and path == f"{repo}/issues/{PR}/comments":
                item = state.comment(body["body"], login=state.login)
                state.comments.append(item)
                return 201, item, {}
            if method == "PATCH" and path.startswith(f"{repo}/issues/comments/"):
                cid = int(path.rsplit("/", 1)[1])
                found = next((c for c in state.comments if c["id"] == cid), None)
                if found is None:
                    return 404, {"message": "Not Found"}, {}
                found["body"] = body["body"]
                found["updated_at"] = "2026-11-27T11:00:00Z"
                return 200, found, {}
            if method == "GET" and path == f"{repo}/issues":
                wanted = {n for n in query.get("labels", [""])[0].split(",") if n}
                listed = [
                    i
                    for i in state.issues
                    if i["state"] == query.get("state", ["open"])[0]
                    and wanted <= {label["name"] for label in i["labels"]}
                ]
                page = int(query.get("page", ["1"])[0])
                headers = {}
                if page * PAGE < len(listed):
                    nxt = f"{state.repo_url()}/issues?page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                return 200, listed[(page - 1) * PAGE : page * PAGE], headers
            if method == "POST" and path == f"{repo}/issues":
                item = state.issue(
                    body.get("body", ""), body["title"], body.get("labels", []), state.login
                )
                state.issues.append(item)
                return 201, item, {}
            match = re.fullmatch(rf"{repo}/issues/(\d+)(/comments)?", path)
            if match and int(match.group(1)) != PR:
                number = int(match.group(1))
                issue = next((i for i in state.issues if i["number"] == number), None)
                if issue is None:
                    return 404, {"message": "Not Found"}, {}
                comments = state.issue_comments.setdefault(number, [])
                if match.group(2) and method == "GET":
                    return 200, comments, {}
                if match.group(2) and method == "POST":
                    item = state.comment(body["body"], login=state.login)
                    item["issue_url"] = issue["url"]
                    comments.append(item)
                    return 201, item, {}
                if method == "GET":
                    return 200, issue, {}
                if method == "PATCH":
                    fields = ("title", "body", "state", "state_reason")
                    issue.update({k: body[k] for k in fields if k in body})
                    return 200, issue, {}
            match = re.fullmatch(rf"{repo}/actions/runs/(\d+)(/artifacts)?", path)
            if method == "GET" and match and int(match.group(1)) in state.artifacts:
                run_id = int(match.group(1))
                run_url = f"{state.repo_url()}/actions/runs/{run_id}"
                if not match.group(2):
                    run = {"id": run_id, "url": run_url, "artifacts_url": f"{run_url}/artifacts"}
                    return 200, run, {}
                items = [
                    {
                        "id": 9000 + i,
                        "name": name,
                        "url": f"{state.repo_url()}/actions/artifacts/{9000 + i}",
                    }
                    for i, name in enumerate(state.artifacts[run_id])
                ]
                return 200, {"total_count": len(items), "artifacts": items}, {}
            if method == "POST" and path == f"{repo}/check-runs":
                run = state.check_run(body)
                state.check_runs.append(run)
                return 201, run, {}
            match = re.fullmatch(rf"{repo}/check-runs/(\d+)", path)
            if method == "PATCH" and match:
                rid = int(match.group(1))
                found_run = next((r for r in state.check_runs if r["id"] == rid), None)
                if found_run is None:
                    return 404, {"message": "Not Found"}, {}
                if found_run["status"] == "completed" and (
                    body.get("status", "completed") != "completed" or "conclusion" in body
                ):
                    return 422, {"message": "a completed check run cannot be changed"}, {}
                found_run.update({k: v for k, v in body.items() if k != "name"})
                if "conclusion" in body:
                    found_run["status"] = "completed"
                return 200, found_run, {}
            return 404, {"message": "Not Found"}, {}

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@contextmanager
def serve(prefix: str = "") -> Iterator[FakeGitHub]:
    """Run the fake on a free loopback port; ``prefix`` "/api/v3" answers like Enterprise."""
    state = FakeGitHub(prefix=prefix)
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
