from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ci.results
from ci.errors import ResultsError
from ci.results import RunResults, dump_results, load_results, loads_results

ResultsDictFactory = Callable[..., dict[str, Any]]


def test_round_trip_through_file(tmp_path: Path, results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    results = RunResults.from_dict(data)
    target = tmp_path / "out" / "results.json"
    dump_results(results, target)
    assert load_results(target) == results
    assert json.loads(target.read_text(encoding="utf-8")) == data
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temp file left


def test_model_fields(results_dict: ResultsDictFactory) -> None:
    r = RunResults.from_dict(results_dict())
    assert r.scenario_names == ("search", "stream")
    search = r.scenario("search")
    assert search.latency_ms.maximum == 400.0
    assert search.cache is not None
    assert search.cache.hit_ratio == 0.8
    assert r.scenario("stream").cache is None
    assert r.run.machine.machine_class == "2cpu-24gb-x86_64"
    with pytest.raises(KeyError, match="no scenario 'nope'"):
        r.scenario("nope")


def test_optional_memory_and_benchmarks(results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    data["scenarios"][0]["memory"] = {
        "rss_slope_mb_per_10min": 1.5,
        "ci_low": 0.5,
        "ci_high": 2.5,
        "leaking": False,
    }
    del data["scenarios"][1]["memory"]
    data["benchmarks"] = [
        {"name": "test_embed", "group": None, "median_s": 0.01, "iqr_s": 0.001, "rounds": 20}
    ]
    r = RunResults.from_dict(data)
    assert r.scenarios[0].memory is not None
    assert r.scenarios[0].memory.rss_slope_mb_per_10min == 1.5
    assert r.scenarios[1].memory is None
    assert r.benchmarks is not None
    assert r.benchmarks[0].name == "test_embed"
    assert RunResults.from_dict(r.to_dict()) == r


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("scenarios", 0, "latency_ms", "p95"),
            "fast",
            "$.scenarios[0].latency_ms.p95: 'fast' is not",
        ),
        (("scenarios", 1, "error_rate"), 1.5, "$.scenarios[1].error_rate: 1.5 is greater than"),
        (("scenarios", 0, "requests"), True, "$.scenarios[0].requests: True is not of type"),
        (("run", "machine", "cpus"), 0, "$.run.machine.cpus: 0 is less than the minimum"),
        (("run", "profile"), None, "$.run.profile: None is not of type 'string'"),
        (("run", "settings", "nested"), {"a": 1}, "$.run.settings.nested"),
        (("scenarios", 0, "extra"), 1, "$.scenarios[0]: Additional properties"),
        (
            ("scenarios", 0, "latency_ms", "p99"),
            50.0,
            "$.scenarios[0].latency_ms.p99: p99 = 50.0 is below p95",
        ),
        (("scenarios", 0, "latency_ms", "p90"), 30.0, "p90 = 30.0 is below p50 = 40.0"),
        (("scenarios", 1, "ttfe_ms", "mean"), 1000.0, "$.scenarios[1].ttfe_ms.mean: mean = 1000.0"),
        (("scenarios", 1, "name"), "search", "duplicate scenario name 'search'"),
        (
            ("scenarios", 0, "resources", "samples", 3, "rss_mb"),
            float("nan"),
            "[3].rss_mb: non-finite",
        ),
    ],
)
def test_bad_values_name_file_and_json_path(
    results_dict: ResultsDictFactory, path: tuple[str | int, ...], value: Any, message: str
) -> None:
    data = results_dict()
    _set(data, path, value)
    with pytest.raises(ResultsError) as info:
        RunResults.from_dict(data, "fork/results.json")
    assert str(info.value).startswith("fork/results.json: ")
    assert message in str(info.value)


def test_newer_schema_version_says_which_are_supported(results_dict: ResultsDictFactory) -> None:
    data = results_dict()
    data["schema_version"] = 2
    with pytest.raises(ResultsError, match=r"schema_version is 2; this version of perfci reads "):
        RunResults.from_dict(data, "new.json")
    data["schema_version"] = "1"
    with pytest.raises(ResultsError, match=r"\$\.schema_version: expected an integer, got '1'"):
        RunResults.from_dict(data)


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
    monkeypatch.setattr(ci.results, "MAX_RESULTS_BYTES", 1024)
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
    import dataclasses

    r = RunResults.from_dict(results_dict())
    bad = dataclasses.replace(
        r, scenarios=(dataclasses.replace(r.scenarios[0], error_rate=2.0), r.scenarios[1])
    )
    target = tmp_path / "results.json"
    with pytest.raises(ResultsError, match="error_rate"):
        dump_results(bad, target)
    assert list(tmp_path.iterdir()) == []


def _junk(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.0, -0.5, 1e308, float("nan"), float("inf"), rng.random()])
    if kind == 4:
        return rng.choice(["", "x", "p95", "\u0000", "\u202e", "a" * 3000])
    if kind in (5, 6):
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["name", "p50", "samples", "run", "id", "machine", "latency_ms", "x"]
    return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randrange(4))}


@pytest.mark.parametrize("seed", range(40))
def test_arbitrary_junk_never_escapes_as_traceback(
    seed: int, results_dict: ResultsDictFactory
) -> None:
    # Replace one random node of a valid document with junk: the outcome must be a model
    # or a ResultsError, never another exception.
    rng = random.Random(seed)
    data = results_dict()
    node: Any = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = rng.choice(keys)
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or rng.random() < 0.3:
            node[key] = _junk(rng)
            break
        node = child
    with contextlib.suppress(ResultsError):
        RunResults.from_dict(data)
