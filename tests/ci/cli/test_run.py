"""`perfci report DIR` renders a run folder again from its files alone; `perfci diff` sets a run
against the stored baseline."""

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


# -- perfci diff: a run against the stored baseline ----------------------------------------


def test_diff_writes_and_prints_the_plain_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest"  # as `perfci run --out latest` leaves it: latest/<run-id>/
    (out / "cand-1").mkdir(parents=True)
    shutil.copyfile(RES / "cand-1.json", out / "cand-1" / "results.json")
    assert main(["diff", str(RES / "base-1.json"), str(out), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == (out / "diff.md").read_text()
    assert "One run per side cannot decide" in printed
    assert "| search | latency p95 | 102.3 ms | 108.6 ms | +6.1 % |" in printed
    # without --out: beside the run's results.json
    assert main(["diff", str(RES / "base-1.json"), str(out / "cand-1" / "results.json")]) == 0
    assert (out / "cand-1" / "diff.md").read_text() == printed


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("absent", "absent: no such file or folder"),
        ("empty-dir", "empty-dir: no results.json (expected a run folder of `perfci run`)"),
        ("not-results.json", "not-results.json: $: expected a JSON object, got list"),
        ("future.json", "$.schema_version is 99; this version of perfci reads schema_version"),
        ("smoke.json", "the baseline is a run of profile 'pr', this run of 'smoke'"),
    ],
)
def test_diff_of_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], candidate: str, message: str
) -> None:
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "not-results.json").write_text("[1, 2]")
    data = json.loads((RES / "cand-1.json").read_text())
    (tmp_path / "smoke.json").write_text(
        json.dumps({**data, "run": {**data["run"], "profile": "smoke"}})
    )
    (tmp_path / "future.json").write_text(json.dumps({**data, "schema_version": 99}))
    assert main(["diff", str(RES / "base-1.json"), str(tmp_path / candidate)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "diff.md").exists()
