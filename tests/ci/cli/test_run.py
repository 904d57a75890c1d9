"""`perfci report DIR`: a run folder renders its report again from its files alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ci.cli import main

RES = Path(__file__).resolve().parents[2] / "resources" / "results"


def test_report_renders_a_run_folder_from_its_results_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copyfile(RES / "base-1.json", run_dir / "results.json")
    run_id = json.loads((run_dir / "results.json").read_text())["run"]["id"]
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert run_id in html
    assert str(run_dir / "report.html") in capsys.readouterr().out
    # again: the same folder gives the same report
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text() == html


def test_report_of_a_folder_without_results_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    assert "Traceback" not in err
