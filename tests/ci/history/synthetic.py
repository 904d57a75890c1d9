"""Synthetic histories: one results file per commit, latency scaled by a step and noise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ci.history.detect import Detection, TrackedMetric, detect
from ci.history.store import Row, Series, SeriesKey
from ci.settings.history import HistoryConfig
from tests.ci.conftest import ResultsDictFactory

SCENARIO = "arrival_rate"
LATENCY_KEYS = ("p50", "p90", "p95", "p99", "p999", "max", "min", "mean")


def sha(i: int) -> str:
    """A fake, distinct 40-hex commit SHA per commit number (git knows none of them)."""
    return f"{(i * 2654435761) % 16**12:012x}" + f"{i:028x}"


def levels(n: int, steps: Sequence[tuple[int, float]]) -> list[float]:
    """The level of commit 1..n: 1.0, times each factor from its 1-based commit on."""
    out = []
    for commit in range(1, n + 1):
        level = 1.0
        for at, factor in steps:
            if commit >= at:
                level *= factor
        out.append(level)
    return out


def write_history(
    folder: Path,
    results_dict: ResultsDictFactory,
    *,
    n: int = 40,
    steps: Sequence[tuple[int, float]] = (),
    noise: float = 0.03,
    seed: int = 7,
    profile: str = "pr",
    machine_class: str = "2cpu-24gb-x86_64",
) -> list[tuple[Path, str]]:
    """``n`` results files (commit 1 first) and their commits; latency gets the steps
    (``(commit, factor)``, e.g. ``(25, 1.12)``) and multiplicative normal noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, level in enumerate(levels(n, steps), start=1):
        doc = results_dict(f"run-{i:03d}", profile=profile, machine_class=machine_class,
                           scenarios=(SCENARIO,), commit=sha(i))  # fmt: skip
        doc["run"]["created_at"] = f"2026-10-{1 + (i - 1) // 24:02d}T{(i - 1) % 24:02d}:00:00+00:00"
        factor = level * (1.0 + noise * float(rng.standard_normal()))
        latency = doc["scenarios"][0]["latency_ms"]
        for key in LATENCY_KEYS:
            latency[key] *= factor
        path = folder / f"results-{i:03d}.json"
        path.write_text(json.dumps(doc))
        out.append((path, sha(i)))
    return out


def step_detection(n: int = 40, subject: str = "commit") -> Detection:
    """Detection over one series of ``n`` commits: latency p95 with a +12 % step at commit
    25 and throughput flat, both with 3 % noise (seed 7)."""
    rng = np.random.default_rng(7)
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    rows = []
    for i, level in enumerate(levels(n, [(25, 1.12)])):
        noise = 1 + 0.03 * float(rng.standard_normal())
        values = {"latency_p95": 100.0 * level * noise, "throughput_rps": 50.0 * noise}
        rows.append(Row(t0 + timedelta(hours=i), sha(i + 1), f"{subject} {i + 1}", "r", values))
    key = SeriesKey("pr", "local-2cpu", SCENARIO)
    series = Series(key, ("latency_p95", "throughput_rps"), tuple(rows))
    metrics = (TrackedMetric("latency_p95", "lower"), TrackedMetric("throughput_rps", "higher"))
    return detect([series], metrics, HistoryConfig())
