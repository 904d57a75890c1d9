"""perfci gate: usage errors, and re-judging a report folder from its files alone."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ci.cli import main
from ci.judge.gate_verdict import dump_verdict
from ci.results.duet import dump_duet
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import verdict


def test_gate_needs_both_refs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--base", "HEAD"]) == 2
    assert "perfci gate needs --base and --candidate" in capsys.readouterr().err


def _folder(tmp_path: Path) -> Path:
    run = drawn_run(24, sd=0.06, seed=12)
    folder = tmp_path / "gate"
    dump_duet(run, folder / "windows.json")
    dump_verdict(verdict(run), folder / "verdict.json")
    return folder


def test_rejudging_a_folder_gives_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    assert main(["gate", "--rejudge", str(folder)]) == 0
    assert "(the same)" in capsys.readouterr().out


def test_a_verdict_that_does_not_follow_from_its_windows_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    v = verdict(drawn_run(24, sd=0.06, seed=12))
    forged = msgspec.structs.replace(v, statistical_decision="fail")
    dump_verdict(forged, folder / "verdict.json")
    assert main(["gate", "--rejudge", str(folder)]) == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_rejudging_a_missing_folder_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", "--rejudge", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err
