from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ci.results
import ci.results.codec
from ci.errors import ResultsError
from ci.results import RunResults, dump_results, load_results, loads_results

ResultsDictFactory = Callable[..., dict[str, Any]]
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def test_round_trip_through_file(tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    results = RunResults.from_dict(data)
    target = tmp_path / "out" / "results.json"
    dump_results(results, target)
    assert load_results(target) == results
    assert json.loads(target.read_text(encoding="utf-8")) == data
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not valid JSON: Expecting property name"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "$: expected a JSON object, got list"),
        (b'{"schema_version": 1, "x": NaN}', "non-finite number NaN"),
        (b'{"schema_version": 1, "x": -Infinity}', "non-finite number -Infinity"),
        (b'{"schema_version": 1, "x": 1e400}', "overflows to inf"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"schema_version": 1, "x": ' + b"9" * 5000 + b"}", "bad JSON number"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
    ],
)
def test_hostile_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(ResultsError) as info:
        load_results(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_deeply_nested_value_inside_valid_document(results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    text = json.dumps(data).replace('"index": "hnsw"', '"index": ' + "[" * 500 + "]" * 500)
    with pytest.raises(ResultsError, match=r"\$\.run\.settings\.index"):
        loads_results(text, "nested.json")


def test_huge_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ci.results.codec, "MAX_RESULTS_BYTES", 1024)
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2048 + b"{}")
    with pytest.raises(ResultsError, match="larger than 1024 bytes; refusing to parse"):
        load_results(path)


def test_default_size_limit_is_50_mb() -> None:
    assert ci.results.MAX_RESULTS_BYTES == 50 * 1024 * 1024


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="cannot read: No such file or directory"):
        load_results(tmp_path / "absent.json")


def test_dump_refuses_invalid_model(tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    r = RunResults.from_dict(results_dict())
    bad = msgspec.structs.replace(
        r, scenarios=(msgspec.structs.replace(r.scenarios[0], error_rate=2.0), r.scenarios[1])
    )
    target = tmp_path / "results.json"
    with pytest.raises(ResultsError, match="error_rate"):
        dump_results(bad, target)
    assert list(tmp_path.iterdir()) == []


def test_version_1_files_still_load() -> None:
    files = sorted((RESOURCES / "results").glob("*.json"))
    assert len(files) == 12
    for path in files:
        assert json.loads(path.read_text(encoding="utf-8"))["schema_version"] == 1
        r = load_results(path)
        assert r.schema_version == 1
        assert r.diagnostics is None
        assert r.scenarios
