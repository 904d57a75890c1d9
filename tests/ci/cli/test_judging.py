"""`perfci comment --event`: the perf-comment workflow's step, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import main

# -- perfci comment --event: the perf-comment workflow's step -----------------------------


def _event_file(tmp_path: Path, action: str = "completed", **run: object) -> str:
    import json

    payload = {
        "action": action,
        "repository": {"full_name": "acme/search"},
        "workflow_run": {
            "id": 100,
            "run_attempt": 1,
            "name": "perf-pr",
            "event": "pull_request",
            "head_sha": "a" * 40,
            "html_url": "https://github.com/acme/search/actions/runs/100",
            "conclusion": "success" if action == "completed" else None,
            "pull_requests": [],
            **run,
        },
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{}", "not a workflow_run event payload"),
        ("[1, 2", "the event payload is not JSON"),
    ],
)
def test_comment_event_bad_payload_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: str, message: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(payload)
    assert main(["comment", "--event", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_comment_event_of_another_trigger_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _event_file(tmp_path, event="push")
    assert main(["comment", "--event", event, "--dry-run"]) == 2
    assert "posts only for pull_request runs" in capsys.readouterr().err


def test_comment_event_missing_artifact_is_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _event_file(tmp_path)
    report = tmp_path / "perf-pr"  # download-artifact found nothing
    assert main(["comment", "--event", event, "--report", str(report), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check: failure: FAIL: no valid perf-pr artifact")
    assert "no perf\\-pr artifact at" in out  # Markdown-escaped


def test_comment_event_mismatched_sha_is_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.ci.post.gate_artifacts import artifact

    folder = tmp_path / "perf-pr"
    folder.mkdir()
    artifact(folder, "pass", head_sha="d" * 40)
    event = _event_file(tmp_path)
    assert main(["comment", "--event", event, "--report", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check: failure: FAIL: no valid perf-pr artifact")
    assert "names head dddddddddddd, but the run tested aaaaaaaaaaaa" in out


def test_comment_event_posts_check_and_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ci.post.fake_github import serve
    from tests.ci.post.gate_artifacts import artifact

    folder = tmp_path / "perf-pr"
    folder.mkdir()
    artifact(folder, "fail")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_installationtoken")
    with serve() as fake:
        fake.installation_token = True
        fake.login = "github-actions[bot]"
        base = ["comment", "--api-url", fake.base, "--bot-login", "github-actions[bot]"]
        assert main([*base, "--event", _event_file(tmp_path, "requested")]) == 0
        assert fake.check_runs[0]["status"] == "in_progress"
        assert main([*base, "--event", _event_file(tmp_path), "--report", str(folder)]) == 0
        assert fake.check_runs[0]["conclusion"] == "failure"  # a FAIL verdict: the job is fine
        assert len(fake.comments) == 1
        assert fake.paths("GET").count(f"{fake.prefix}/user") == 0
    err = capsys.readouterr().err
    assert "perf/gate check run 1001: failure" in err
    assert "comment created" in err


def test_comment_event_posting_failure_exits_2_after_trying_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ci.post.fake_github import Fault, serve
    from tests.ci.post.gate_artifacts import artifact

    folder = tmp_path / "perf-pr"
    folder.mkdir()
    artifact(folder, "pass")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_installationtoken")
    with serve() as fake:
        fake.faults.append(Fault("POST", "/comments$", 403, "conversation locked"))
        argv = ["comment", "--api-url", fake.base, "--bot-login", "perf-bot"]
        code = main([*argv, "--event", _event_file(tmp_path), "--report", str(folder)])
        assert code == 2
        assert fake.check_runs[0]["conclusion"] == "success"
    err = capsys.readouterr().err
    assert "error: comment: GitHub API error while creating a comment on #17" in err
    assert "ghs_installationtoken" not in err


def test_comment_without_an_event_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comment", "--report", "."]) == 2
    assert "the following arguments are required: --event" in capsys.readouterr().err


def test_comment_without_token_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    event = _event_file(tmp_path)
    assert main(["comment", "--event", event, "--report", str(tmp_path)]) == 2
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err
