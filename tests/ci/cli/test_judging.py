"""`perfci compare` and `perfci comment` end to end on recorded result files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import main

RES = Path(__file__).resolve().parents[2] / "resources" / "results"
BASE = [str(RES / f"base-{i}.json") for i in range(1, 7)]
CAND = [str(RES / f"cand-{i}.json") for i in range(1, 7)]


def test_compare_writes_report_and_exits_1_on_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", *BASE, "--candidate", *CAND, "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "Performance: FAIL" in out
    for name in ("comment.md", "summary.md", "report.html", "verdict.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(list((tmp_path / "inputs").glob("*.json"))) == 12


def test_compare_against_itself_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", *BASE, "--candidate", *BASE]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_comment_dry_run_rejudges_the_report_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", *BASE, "--candidate", *CAND, "--report", str(tmp_path)]) == 1
    capsys.readouterr()
    code = main(["comment", "--repo", "o/r", "--pr", "7", "--report", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("<!-- perfci:comment -->\n")
    assert "**Performance: FAIL**" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "/nonexistent.json", "--candidate", "/nonexistent.json"], "no such file"),
        (["comment", "--repo", "bad", "--pr", "1", "--report", "."], "expected OWNER/NAME"),
        (["comment", "--repo", "o/r", "--pr", "0", "--report", "."], "--pr 0 is invalid"),
        (["comment", "--repo", "o/r", "--pr", "1", "--report", "."], "not a report folder"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_hostile_result_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"schema_version": 1, "run": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert main(["compare", str(bad), "--candidate", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err


def test_comment_without_token_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    main(["compare", *BASE, "--candidate", *CAND, "--report", str(tmp_path)])
    assert main(["comment", "--repo", "o/r", "--pr", "7", "--report", str(tmp_path)]) == 2
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err
