from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ci.judge.gate_folder import GateFolder
from ci.post.artifact import ArtifactError, check_against_event, load_pr_record
from ci.post.event import WorkflowRunEvent

HEAD, MERGE, BASE = "a" * 40, "c" * 40, "b" * 40
RECORD: dict[str, Any] = {
    "version": 1,
    "pr": 17,
    "head_sha": HEAD,
    "merge_sha": MERGE,
    "base_sha": BASE,
    "run_id": 100,
    "run_attempt": 2,
    "outcome": "tested",
}


def _event(**changes: Any) -> WorkflowRunEvent:
    values: dict[str, Any] = {
        "action": "completed",
        "repo": "acme/search",
        "workflow": "perf-pr",
        "run_id": 100,
        "run_attempt": 2,
        "run_url": "https://github.com/acme/search/actions/runs/100",
        "head_sha": HEAD,
        "event": "pull_request",
        "conclusion": "success",
        "pull_requests": (),
    }
    values.update(changes)
    return WorkflowRunEvent(**values)


def _write(tmp_path: Path, **changes: Any) -> GateFolder:
    record = {**RECORD, **changes}
    record = {k: v for k, v in record.items() if v is not None}
    (tmp_path / "pr.json").write_text(json.dumps(record))
    return GateFolder(tmp_path)


def test_a_tested_pull_request(tmp_path: Path) -> None:
    record = check_against_event(load_pr_record(_write(tmp_path)), _event())
    assert (record.pr, record.merge_sha, record.base_sha) == (17, MERGE, BASE)


def test_cannot_merge_needs_a_reason_and_no_shas(tmp_path: Path) -> None:
    folder = _write(
        tmp_path, outcome="cannot-merge", merge_sha=None, base_sha=None, reason="conflict"
    )
    record = load_pr_record(folder)
    assert record.outcome == "cannot-merge"
    assert record.reason == "conflict"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "this perfci reads version 1"),
        ({"pr": 0}, "not a pull-request number"),
        ({"pr": "17"}, "Expected `int`"),
        ({"head_sha": "HEAD"}, "not a 40-digit commit sha"),
        ({"merge_sha": None}, "needs merge_sha and base_sha"),
        ({"outcome": "cannot-merge"}, "needs a reason"),
        ({"outcome": "exploded"}, "Invalid enum value"),
        ({"reason": "x" * 501}, "at most 500"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_invalid_records(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        load_pr_record(_write(tmp_path, **changes))


def test_missing_artifact_or_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no perf-pr artifact"):
        load_pr_record(GateFolder(tmp_path / "absent"))
    with pytest.raises(ArtifactError, match=r"pr\.json is missing"):
        load_pr_record(GateFolder(tmp_path))
    (tmp_path / "pr.json").write_text("x" * 70_000)
    with pytest.raises(ArtifactError, match="at most 65536 are read"):
        load_pr_record(GateFolder(tmp_path))


def test_a_symlinked_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.json").write_text(json.dumps(RECORD))
    (tmp_path / "pr.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ArtifactError, match="not a plain file"):
        load_pr_record(GateFolder(tmp_path))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (_event(run_attempt=3), "from run 100 attempt 2, not run 100 attempt 3"),
        (_event(run_id=101), "a stale artifact"),
        (_event(head_sha="d" * 40), "names head aaaaaaaaaaaa, but the run tested dddddddddddd"),
        (_event(pull_requests=(18,)), "names pull request #17, but the run belongs to #18"),
    ],
)
def test_a_record_of_another_run_or_commit_is_refused(
    tmp_path: Path, event: WorkflowRunEvent, message: str
) -> None:
    record = load_pr_record(_write(tmp_path))
    with pytest.raises(ArtifactError, match=message):
        check_against_event(record, event)
