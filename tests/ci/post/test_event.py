from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ci.errors import PostError
from ci.post.event import load_event, parse_event

HEAD = "a" * 40
PAYLOAD: dict[str, Any] = {
    "action": "completed",
    "repository": {"full_name": "acme/search"},
    "workflow_run": {
        "id": 123456,
        "run_attempt": 2,
        "name": "perf-pr",
        "event": "pull_request",
        "head_sha": HEAD,
        "html_url": "https://github.com/acme/search/actions/runs/123456",
        "conclusion": "success",
        "pull_requests": [{"number": 17, "head": {"sha": HEAD}}],
    },
}


def _with(path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(PAYLOAD)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


def test_a_completed_run() -> None:
    event = parse_event(PAYLOAD)
    assert event.action == "completed"
    assert event.repo == "acme/search"
    assert (event.run_id, event.run_attempt) == (123456, 2)
    assert event.attempt_url == "https://github.com/acme/search/actions/runs/123456/attempts/2"
    assert event.succeeded
    assert event.pull_requests == (17,)


@pytest.mark.parametrize(
    ("conclusion", "reason"),
    [
        ("failure", "The perf-pr run failed before it reached a verdict"),
        ("cancelled", "The perf-pr run was cancelled"),
        ("timed_out", "The perf-pr run timed out"),
        ("startup_failure", "The perf-pr run could not start"),
        ("weird", "The perf-pr run ended as 'weird'"),
    ],
)
def test_failure_reasons(conclusion: str, reason: str) -> None:
    event = parse_event(_with("workflow_run.conclusion", conclusion))
    assert not event.succeeded
    assert event.failure_reason() == reason


def test_a_fork_pull_request_has_no_numbers_and_requested_no_conclusion() -> None:
    data = _with("workflow_run.pull_requests", [])
    data["action"] = "requested"
    data["workflow_run"]["conclusion"] = None
    event = parse_event(data)
    assert event.pull_requests == ()
    assert event.conclusion is None
    assert not event.succeeded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "no workflow_run object"),
        ({"action": "completed"}, "no workflow_run object"),
        (_with("action", "opened"), "action 'opened' is not one of"),
        (_with("repository", KeyError), "no repository object"),
        (_with("repository.full_name", "a/b/c"), "is not owner/name"),
        (_with("workflow_run.id", "12"), "workflow_run.id is '12': expected int"),
        (_with("workflow_run.id", True), "expected int"),
        (_with("workflow_run.run_attempt", 0), "must be >= 1"),
        (_with("workflow_run.head_sha", "main"), "is not a commit sha"),
        (_with("workflow_run.html_url", "javascript:alert(1)"), "is not a URL"),
        (_with("workflow_run.conclusion", None), "without a conclusion"),
    ],
)
def test_bad_payloads_are_clear_errors(data: object, message: str) -> None:
    with pytest.raises(PostError, match=message):
        parse_event(data)


def test_load_event_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(PAYLOAD))
    assert load_event(path).run_id == 123456
    path.write_text("{not json")
    with pytest.raises(PostError, match="not JSON"):
        load_event(path)
    with pytest.raises(PostError, match="cannot read the event payload"):
        load_event(tmp_path / "missing.json")
