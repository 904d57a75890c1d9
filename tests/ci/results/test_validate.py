from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest

from ci.errors import ResultsError
from ci.results import RunResults, json_path

ResultsDictFactory = Callable[..., dict[str, Any]]


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
    data["schema_version"] = 4
    with pytest.raises(
        ResultsError,
        match=r"schema_version is 4; this version of perfci reads schema_version 1, 2, 3 ",
    ):
        RunResults.from_dict(data, "new.json")
    data["schema_version"] = "1"
    with pytest.raises(ResultsError, match=r"\$\.schema_version: expected an integer, got '1'"):
        RunResults.from_dict(data)


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


def test_json_path_renders_keys_and_indexes() -> None:
    assert json_path([]) == "$"
    assert json_path(["scenarios", 0, "latency_ms", "p95"]) == "$.scenarios[0].latency_ms.p95"
