"""pytest-benchmark JSON files (untrusted), compared per benchmark name."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ci.errors import ComparisonError, ResultsError
from ci.judge.compare import (
    DEFAULT_BOOTSTRAP_SEED,
    MetricComparison,
    Status,
    compare_metric,
    overall_status,
)
from ci.results import json_path, read_json_file
from ci.settings import CompareConfig, MetricSpec

#: Raw pytest-benchmark timings kept per side; the bootstrap cost grows with n.
MAX_RAW_SAMPLES = 5000


@dataclass(frozen=True, slots=True)
class BenchmarkComparison:
    paired: bool
    base_files: tuple[str, ...]
    candidate_files: tuple[str, ...]
    metrics: tuple[MetricComparison, ...]
    seed: int = 0  # the seed of the bootstrap and of the raw-sample draw

    @property
    def status(self) -> Status:
        return overall_status(self.metrics, ())


@dataclass(frozen=True, slots=True)
class _Bench:
    group: str | None
    median: float
    data: tuple[float, ...] | None


def load_benchmark_file(path: str | os.PathLike[str]) -> dict[str, _Bench]:
    """Read a pytest-benchmark JSON file (untrusted): name -> figures."""
    source = os.fspath(path)
    data = read_json_file(source)

    def bad(where: list[str | int], what: str) -> ResultsError:
        return ResultsError(f"{source}: {json_path(where)}: {what}")

    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise bad([], "not a pytest-benchmark file (no 'benchmarks' array)")
    out: dict[str, _Bench] = {}
    for i, item in enumerate(data["benchmarks"]):
        where: list[str | int] = ["benchmarks", i]
        if not isinstance(item, dict):
            raise bad(where, "expected an object")
        name, group, st = item.get("name"), item.get("group"), item.get("stats")
        if not isinstance(name, str) or not name:
            raise bad([*where, "name"], f"expected a non-empty string, got {name!r:.80}")
        if group is not None and not isinstance(group, str):
            raise bad([*where, "group"], f"expected a string or null, got {group!r:.80}")
        if not isinstance(st, dict):
            raise bad([*where, "stats"], "expected an object")
        median = st.get("median")
        if not _is_positive_number(median):
            raise bad(
                [*where, "stats", "median"], f"expected a positive number, got {median!r:.80}"
            )
        assert isinstance(median, (int, float))
        raw = st.get("data")
        samples: tuple[float, ...] | None = None
        if raw is not None:
            if not isinstance(raw, list) or not raw or not all(_is_positive_number(v) for v in raw):
                raise bad(
                    [*where, "stats", "data"], "expected a non-empty array of positive numbers"
                )
            samples = tuple(float(v) for v in raw)
        if name in out:
            raise bad([*where, "name"], f"duplicate benchmark name {name!r}")
        out[name] = _Bench(group, float(median), samples)
    return out


def _is_positive_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def compare_benchmarks(
    base_json_paths: Sequence[str | os.PathLike[str]],
    cand_json_paths: Sequence[str | os.PathLike[str]],
    config: CompareConfig,
    *,
    seed: int | None = None,
) -> BenchmarkComparison:
    """Compare pytest-benchmark files per benchmark name (lower time is better).

    When every file holds raw timings (``--benchmark-save-data``) they are pooled per side
    and compared unpaired (at most ``MAX_RAW_SAMPLES`` per side, drawn at random); otherwise
    each file's median is one run, paired when the file counts are equal.
    """
    if not base_json_paths or not cand_json_paths:
        raise ComparisonError("compare_benchmarks needs at least one base and one candidate file")
    base = [load_benchmark_file(p) for p in base_json_paths]
    cand = [load_benchmark_file(p) for p in cand_json_paths]
    seed = DEFAULT_BOOTSTRAP_SEED if seed is None else seed  # always seeded: re-judging repeats
    rng = np.random.default_rng(seed)
    spec = MetricSpec("time", "lower", "ratio")
    names: list[str] = []
    for f in [*base, *cand]:
        names.extend(n for n in f if n not in names)
    raw = all(b.data is not None for f in [*base, *cand] for b in f.values())
    paired = not raw and len(base) == len(cand) and len(base) > 1
    metrics: list[MetricComparison] = []
    for name in names:
        group = next(f[name].group for f in [*base, *cand] if name in f) or "benchmarks"
        b_has = [f[name] for f in base if name in f]
        c_has = [f[name] for f in cand if name in f]
        b_vals: list[float | None]
        c_vals: list[float | None]
        if raw:
            b_vals = list(_cap([v for b in b_has for v in b.data or ()], rng))
            c_vals = list(_cap([v for c in c_has for v in c.data or ()], rng))
        else:
            b_vals = [f[name].median if name in f else None for f in base]
            c_vals = [f[name].median if name in f else None for f in cand]
        m = compare_metric(
            group, MetricSpec(name, spec.direction), b_vals, c_vals, paired, config, rng
        )
        metrics.append(m)
    return BenchmarkComparison(
        paired=paired,
        base_files=tuple(os.fspath(p) for p in base_json_paths),
        candidate_files=tuple(os.fspath(p) for p in cand_json_paths),
        metrics=tuple(metrics),
        seed=seed,
    )


def _cap(values: list[float], rng: np.random.Generator) -> list[float]:
    if len(values) <= MAX_RAW_SAMPLES:
        return values
    chosen = rng.choice(len(values), size=MAX_RAW_SAMPLES, replace=False)
    return [values[i] for i in sorted(chosen)]
