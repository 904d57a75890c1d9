"""Validation of an untrusted results document, before it becomes the model.

A file from a fork's artifact may be malformed, huge, or hostile. Two layers:

1. the JSON Schema in ``schema/results.schema.json`` (draft 2020-12): shapes, types, sizes;
2. semantic checks the schema cannot express: finite numbers, percentile order, unique
   scenario names.

Every problem is a :class:`ResultsError` naming the source and the JSON path of the value.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions

from ci.errors import ResultsError

SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)
SCHEMA_PATH = Path(__file__).parent / "schema" / "results.schema.json"

_PERCENTILE_ORDER = ("p50", "p90", "p95", "p99", "p999", "max")


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def json_path(parts: Sequence[str | int]) -> str:
    """Render a JSON path like ``$.scenarios[0].latency_ms.p95``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate_document(data: object, source: str) -> None:
    """Raise :class:`ResultsError` unless ``data`` is a valid results document."""
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: $: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if type(version) is not int:
        raise ResultsError(
            f"{source}: $.schema_version: expected an integer, got {_short(version)}"
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ResultsError(
            f"{source}: $.schema_version is {version}; this version of perfci reads "
            f"schema_version {supported} (upgrade perfci to read newer results)"
        )
    if version == 1 and "diagnostics" in data:
        # The schema says so too, but its message would point at the document's root.
        raise ResultsError(
            f"{source}: $.diagnostics: schema_version 1 has no diagnostics (they came with 2)"
        )
    scenarios = data.get("scenarios")
    if version < 3 and isinstance(scenarios, list):
        for i, scenario in enumerate(scenarios):
            if isinstance(scenario, dict) and "latency_histogram" in scenario:
                raise ResultsError(
                    f"{source}: $.scenarios[{i}].latency_histogram: schema_version {version} "
                    "has no latency histogram (it came with 3)"
                )
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    except RecursionError as exc:
        raise ResultsError(f"{source}: document nested too deeply") from exc
    if error is not None:
        path = json_path(list(error.absolute_path))
        raise ResultsError(f"{source}: {path}: {_schema_message(error)}")
    _check_finite(data, [], source)
    for i, scenario in enumerate(data["scenarios"]):
        for key in ("latency_ms", "ttfe_ms"):
            summary = scenario[key]
            if summary is None:
                continue
            _check_percentiles(summary, ["scenarios", i, key], source)
        if scenario.get("latency_histogram") is not None:
            _check_histogram(scenario["latency_histogram"], ["scenarios", i], source)
    names = [s["name"] for s in data["scenarios"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ResultsError(f"{source}: $.scenarios: duplicate scenario name {duplicates[0]!r}")


def _schema_message(error: jsonschema.exceptions.ValidationError) -> str:
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return message


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_finite(value: object, path: list[str | int], source: str) -> None:
    # The schema has already bounded the nesting depth, so recursion is safe here.
    if isinstance(value, float) and not math.isfinite(value):
        raise ResultsError(f"{source}: {json_path(path)}: non-finite number {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, [*path, key], source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, [*path, index], source)


def _check_histogram(hist: dict[str, list[Any]], path: list[str | int], source: str) -> None:
    where = json_path([*path, "latency_histogram"])
    edges, counts = hist["edges_ms"], hist["counts"]
    if len(edges) != len(counts) + 1:
        raise ResultsError(
            f"{source}: {where}: {len(edges)} edges for {len(counts)} bins (need bins + 1)"
        )
    for a, b in itertools.pairwise(edges):
        if not a < b:
            raise ResultsError(f"{source}: {where}.edges_ms: {b!r} after {a!r}: must increase")


def _check_percentiles(summary: dict[str, float], path: list[str | int], source: str) -> None:
    for lower, upper in itertools.pairwise(_PERCENTILE_ORDER):
        if summary[lower] > summary[upper]:
            raise ResultsError(
                f"{source}: {json_path([*path, upper])}: {upper} = {summary[upper]!r} is below "
                f"{lower} = {summary[lower]!r}; percentiles must not decrease"
            )
    if summary["min"] > summary["p50"]:
        raise ResultsError(
            f"{source}: {json_path([*path, 'min'])}: min = {summary['min']!r} is above "
            f"p50 = {summary['p50']!r}"
        )
    if not summary["min"] <= summary["mean"] <= summary["max"]:
        raise ResultsError(
            f"{source}: {json_path([*path, 'mean'])}: mean = {summary['mean']!r} lies outside "
            f"[min, max] = [{summary['min']!r}, {summary['max']!r}]"
        )
