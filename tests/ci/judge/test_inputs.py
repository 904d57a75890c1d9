from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.errors import ResultsError
from ci.judge.inputs import expand, is_benchmark_file, report_inputs

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def test_expand_files_and_folders(tmp_path: Path) -> None:
    for name in ("b/2/results.json", "b/1/results.json", "b/1/other.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    single = tmp_path / "b" / "1" / "other.json"
    assert expand([tmp_path / "b", single]) == [
        tmp_path / "b/1/results.json",
        tmp_path / "b/2/results.json",
        single,
    ]
    with pytest.raises(ResultsError, match=r"no results\.json under this folder"):
        expand([_empty(tmp_path)])
    with pytest.raises(ResultsError, match="no such file or folder"):
        expand([tmp_path / "absent"])


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_is_benchmark_file(tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine_info": {}, "benchmarks": []}))
    assert is_benchmark_file(bench)
    assert not is_benchmark_file(RESOURCES / "results" / "base-1.json")


def test_report_inputs_in_numeric_order(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("base-10.json", "base-2.json", "candidate-1.json"):
        (inputs / name).write_text("{}")
    base, cand = report_inputs(tmp_path)
    assert [p.name for p in base] == ["base-2.json", "base-10.json"]
    assert [p.name for p in cand] == ["candidate-1.json"]
    (inputs / "candidate-x.json").write_text("{}")
    with pytest.raises(ResultsError, match="unexpected file name"):
        report_inputs(tmp_path)
    with pytest.raises(ResultsError, match="not a report folder"):
        report_inputs(tmp_path / "nothing")
