"""One capacity step: ``scenarios/capacity.js`` at one open-model rate, and its figures.

k6 runs a warm-up and then the measured window at the same constant arrival rate; the
figures are the ``{scenario:measure}`` sub-metrics of its summary export (exact
percentiles: k6 keeps every sample). No per-request CSV is written: at thousands of
requests a second that would cost the load generator CPU it shares with the service.

A step **passes** when, in the measured window, p99 <= the limit, no request failed, and
k6 dropped at most ``max_dropped_fraction`` of the planned iterations (an open model
drops an iteration when no VU is free: the server fell behind).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import RunError
from ci.measure.k6 import EXIT_THRESHOLDS_FAILED, SCENARIOS_DIR, TREND_STATS

SCRIPT = SCENARIOS_DIR / "capacity.js"
SUB = "{scenario:measure}"
# VUs for an open model: rate x latency are busy at once (Little's law). Up front enough
# for every request to take twice the p99 limit, so that a passing step never waits for
# k6 to allocate a VU mid-window, which drops iterations (seen at 125/s with 50 ms worth,
# and at 137/s with 100 ms worth when a few requests took longer); at most twice that.
PREALLOCATED_LATENCY_FACTOR = 2
MAX_VUS_FACTOR = 2


@dataclass(frozen=True, slots=True)
class StepSpec:
    """What one step offers, and to whom."""

    base_url: str
    rate: int  # requests per second offered
    query_file: Path  # the query log format (scenarios/lib/query.js)
    sequential: bool  # each query of the file once, in order (all-unique); else by weight
    warmup_s: float
    measure_s: float
    p99_ms: float
    max_dropped_fraction: float

    def __post_init__(self) -> None:
        assert self.rate >= 1, f"rate {self.rate} must be >= 1"
        assert self.measure_s > 0, f"measure_s {self.measure_s} must be > 0"

    @property
    def planned(self) -> int:
        """Iterations the measured window starts when the server keeps up."""
        return math.ceil(self.rate * self.measure_s)

    @property
    def iterations(self) -> int:
        """Queries a sequential step uses: warm-up and measured window."""
        return math.ceil(self.rate * self.warmup_s) + self.planned

    def vus(self) -> tuple[int, int]:
        pre = max(20, math.ceil(self.rate * PREALLOCATED_LATENCY_FACTOR * self.p99_ms / 1000))
        return pre, max(50, MAX_VUS_FACTOR * pre)

    def env(self) -> dict[str, str]:
        pre, most = self.vus()
        return {
            "BASE_URL": self.base_url,
            "QUERY_LOG": str(self.query_file),
            "CAPACITY_RATE": str(self.rate),
            "CAPACITY_WARMUP_S": f"{self.warmup_s:g}",
            "CAPACITY_MEASURE_S": f"{self.measure_s:g}",
            "CAPACITY_MIX": "sequential" if self.sequential else "weighted",
            "CAPACITY_P99_MS": f"{self.p99_ms:g}",
            "CAPACITY_PREALLOCATED_VUS": str(pre),
            "CAPACITY_MAX_VUS": str(most),
        }


@dataclass(frozen=True, slots=True)
class StepMeasure:
    """The measured window of one step."""

    rate: int
    requests: int
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed_rate: float
    dropped: int
    aborted: bool  # stopped early: p99 passed twice the limit
    passed: bool


def judge(
    spec: StepSpec,
    requests: int,
    p99_ms: float,
    failed_rate: float,
    dropped: int,
    aborted: bool,
) -> bool:
    """The capacity rule for one step (module docstring)."""
    if aborted or requests == 0:
        return False
    allowed = math.floor(spec.planned * spec.max_dropped_fraction)
    return p99_ms <= spec.p99_ms and failed_rate == 0 and dropped <= allowed


def parse_step(spec: StepSpec, data: object, source: str) -> StepMeasure:
    """The measured window's figures from a ``--summary-export`` document."""
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise RunError(f"{source}: not a k6 summary export (no 'metrics' object)")
    metrics: dict[str, Any] = data["metrics"]

    def sub(name: str) -> dict[str, Any]:
        value = metrics.get(name + SUB)
        return value if isinstance(value, dict) else {}

    try:
        requests = int(sub("http_reqs").get("count", 0))
        latency = sub("http_req_duration")
        failed = float(sub("http_req_failed").get("value", 0.0))
        dropped = int(sub("dropped_iterations").get("count", 0))
        thresholds = latency.get("thresholds", {})
        aborted = bool(thresholds.get(f"p(99)<={spec.p99_ms * 2:g}", False))
        if requests > 0 and "p(99)" in latency:
            p50, p95, p99 = (float(latency[k]) for k in ("med", "p(95)", "p(99)"))
        else:
            p50 = p95 = p99 = math.inf
    except (TypeError, ValueError) as exc:
        raise RunError(f"{source}: malformed capacity sub-metrics: {exc}") from exc
    return StepMeasure(
        rate=spec.rate,
        requests=requests,
        achieved_rps=requests / spec.measure_s,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        failed_rate=failed,
        dropped=dropped,
        aborted=aborted,
        passed=judge(spec, requests, p99, failed, dropped, aborted),
    )


def run_step(
    spec: StepSpec, binary: Path, out_dir: Path, name: str, extra_env: Mapping[str, str]
) -> StepMeasure:
    """Run one step with k6 and return its figures; its summary and log stay in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / f"{name}.summary.json"
    log = out_dir / f"{name}.k6.log"
    summary.unlink(missing_ok=True)
    env = {**os.environ, **extra_env, **spec.env(), "K6_NO_USAGE_REPORT": "true"}
    cmd = [
        *[str(binary), "run", "--quiet", "--no-color"],
        *["--summary-trend-stats", TREND_STATS, "--summary-export", str(summary)],
        str(SCRIPT),
    ]
    timeout = spec.warmup_s + spec.measure_s + 60
    with log.open("w") as fh:
        try:
            proc = subprocess.run(
                cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RunError(f"k6 capacity step {name} ran past {timeout:.0f} s") from exc
        except OSError as exc:
            raise RunError(f"cannot start k6 ({binary}): {exc.strerror or exc}") from exc
    if proc.returncode not in (0, EXIT_THRESHOLDS_FAILED) or not summary.exists():
        tail = log.read_text(errors="replace")[-1500:]
        code = proc.returncode
        raise RunError(f"k6 capacity step {name} exited {code}; its output ends:\n{tail}")
    try:
        data = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{summary}: unreadable k6 summary: {exc}") from exc
    return parse_step(spec, data, str(summary))
