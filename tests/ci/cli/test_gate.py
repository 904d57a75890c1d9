"""perfci gate: usage errors, pr.json, and re-judging a report folder from its files alone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import msgspec
import pytest

from ci.cli import main
from ci.judge.gate_folder import GateFolder, PrRecord
from ci.judge.gate_verdict import GateDecision, dump_verdict, load_verdict
from tests.ci.post.gate_artifacts import artifact, event_file


def test_gate_needs_both_refs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--base", "HEAD"]) == 2
    assert "perfci gate needs --base and --candidate" in capsys.readouterr().err


def _folder(tmp_path: Path, decision: GateDecision = "pass") -> GateFolder:
    root = tmp_path / "perf-pr"
    root.mkdir()
    return artifact(root, decision)


@pytest.mark.parametrize(
    ("decision", "conclusion"),
    [("pass", "success"), ("fail", "failure"), ("inconclusive", "neutral")],
)
def test_rejudge_and_the_poster_give_the_same_conclusion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], decision: GateDecision, conclusion: str
) -> None:
    folder = _folder(tmp_path, decision)
    assert main(["gate", "--rejudge", str(folder.root)]) == 0
    rejudged = capsys.readouterr().out
    assert "(the same)" in rejudged
    found = re.search(r"^conclusion: (\w+)$", rejudged, re.MULTILINE)
    assert found is not None, rejudged
    event = event_file(tmp_path)
    assert main(["comment", "--event", str(event), "--report", str(folder.root), "--dry-run"]) == 0
    posted = capsys.readouterr().out
    assert posted.startswith(f"check: {conclusion}: ")
    assert found.group(1) == conclusion
    assert f"comment on #17:\n<!-- perfci:comment -->\n**Performance gate: {decision.upper()}" in (
        posted
    )


def test_a_verdict_that_does_not_follow_from_its_windows_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    v = load_verdict(folder.verdict)
    forged = msgspec.structs.replace(
        v, judgement=msgspec.structs.replace(v.judgement, decision="fail", conclusion="failure")
    )
    dump_verdict(forged, folder.verdict)
    assert main(["gate", "--rejudge", str(folder.root)]) == 1
    out = capsys.readouterr().out
    assert "conclusion: success" in out
    assert "DIFFERENT" in out


def test_rejudging_a_missing_folder_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", "--rejudge", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err


def _git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


@pytest.mark.parametrize("case", ["superseded", "cannot-merge", "not-a-merge"])
def test_pr_mode_writes_pr_json_and_measures_nothing_it_cannot(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "feature")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "change")
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    if case != "not-a-merge":
        _git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature")
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    out = tmp_path / "report"
    argv = [
        "gate", "--repo", str(repo), "--out", str(out), "--pr", "17",
        "--pr-head", "f" * 40 if case == "superseded" else head,
        "--run-id", "123", "--run-attempt", "2",
        "--merge-checkout", "failure" if case == "cannot-merge" else "success",
    ]  # fmt: skip
    assert main(argv) == 0
    record = msgspec.json.decode(GateFolder(out).pr.read_bytes(), type=PrRecord)
    expected = "cannot-merge" if case == "not-a-merge" else case
    assert record.outcome == expected
    assert output.read_text() == f"outcome={expected}\n"
    assert (record.pr, record.run_id, record.run_attempt) == (17, 123, 2)
    assert record.reason
    assert not GateFolder(out).verdict.exists()
    if case == "superseded":
        assert record.merge_sha == _git(repo, "rev-parse", "HEAD")
        assert record.base_sha == _git(repo, "rev-parse", "HEAD^1")
