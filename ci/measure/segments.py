"""One k6 test split over N runners with execution segments: each runner's argv, and preflight.

Runner ``i`` of ``N`` (1-based, as k6-operator numbers its runner jobs) runs the segment
``(i-1)/N:i/N`` of the sequence ``0,1/N,...,1``. Its argv is built by :func:`runner_argv`
and nowhere else: the local launcher (:mod:`ci.measure.launch`) runs it as it is, and the
k6-operator TestRun (:mod:`ci.measure.operator`) carries the same arguments, in the order
k6-operator assembles them (``pkg/resources/jobs/runner.go``: segments, ``spec.arguments``,
the script, ``--address``, ``--paused``, the ``instance_id`` and ``testrun_name`` tags).

Every runner starts paused, with thresholds off (they are judged once, on the merged
samples: :mod:`ci.measure.merge`), and writes its own gzip CSV with microsecond timestamps.

Preflight (:func:`preflight`) reads the script's scenarios from ``k6 inspect`` and refuses a
split that would lose load: an arrival-rate scenario with fewer ``preAllocatedVUs`` or
``maxVUs`` than runners gives some runner 0 VUs, and that runner's share of the rate is then
silently dropped.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ci.errors import RunError
from ci.measure.k6 import TREND_STATS

CSV_TIME_FORMAT = "unix_micro"  # K6_CSV_TIME_FORMAT of every runner: exact start skews
API_PORT = 6565  # k6's REST API port, as k6-operator's runner pods use it
ARRIVAL_RATE = ("constant-arrival-rate", "ramping-arrival-rate")


def segment_sequence(n: int) -> str:
    """``0,1/n,...,1``: the execution-segment sequence of ``n`` equal runners."""
    if n < 1:
        raise RunError(f"runners {n}: at least 1 is needed")
    return ",".join(_frac(Fraction(k, n)) for k in range(n + 1))


def segment(n: int, i: int) -> str:
    """Runner ``i`` (1-based) of ``n``: ``(i-1)/n:i/n``."""
    if not 1 <= i <= n:
        raise RunError(f"runner {i} of {n}: the index must be 1..{n}")
    return f"{_frac(Fraction(i - 1, n))}:{_frac(Fraction(i, n))}"


def _frac(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


@dataclass(frozen=True, slots=True)
class RunnerSpec:
    """What every runner of one distributed test shares."""

    script: str  # the script path as the runner sees it
    runners: int
    testrun: str  # the testrun_name tag (and the TestRun's name)

    def __post_init__(self) -> None:
        if self.runners < 1:
            raise RunError(f"runners {self.runners}: at least 1 is needed")


def shared_args(raw_path: str) -> list[str]:
    """The arguments every runner gets (k6-operator: ``spec.arguments``)."""
    return [
        "--no-thresholds",
        "--no-color",
        "--summary-trend-stats",
        TREND_STATS,
        "--out",
        f"csv={raw_path}",
    ]


def runner_argv(spec: RunnerSpec, i: int, *, address: str, raw_path: str) -> list[str]:
    """The exact ``k6 run`` argv of runner ``i`` (1-based) of ``spec.runners``.

    ``address`` is its REST API (``host:port``); ``raw_path`` its gzip CSV file.
    With one runner there is no segment, as k6-operator does at parallelism 1.
    """
    argv = ["k6", "run", "--quiet"]
    if spec.runners > 1:
        argv += [
            f"--execution-segment={segment(spec.runners, i)}",
            f"--execution-segment-sequence={segment_sequence(spec.runners)}",
        ]
    elif i != 1:
        raise RunError(f"runner {i} of 1: the index must be 1")
    argv += shared_args(raw_path)
    argv += [spec.script, f"--address={address}", "--paused"]
    argv += ["--tag", f"instance_id={i}", "--tag", f"testrun_name={spec.testrun}"]
    return argv


def runner_env() -> dict[str, str]:
    """Environment every runner needs besides the script's own."""
    return {"K6_CSV_TIME_FORMAT": CSV_TIME_FORMAT, "K6_NO_USAGE_REPORT": "true"}


# -- preflight ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preflight:
    """What preflight found for N runners: warnings to print (errors are raised)."""

    warnings: tuple[str, ...]


def inspect_options(binary: Path, script: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The script's resolved options (``k6 inspect``), with ``env`` as its ``__ENV``."""
    full = {**os.environ, **env}
    try:
        proc = subprocess.run(
            [str(binary), "inspect", "--include-system-env-vars", str(script)],
            env=full, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunError(f"k6 inspect {script.name}: {exc}") from exc
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"k6 inspect {script.name} exited {proc.returncode}: {proc.stderr[-800:]}"
        ) from exc
    if not isinstance(data, dict):
        raise RunError(f"k6 inspect {script.name}: not an options object")
    return data


def preflight(options: Mapping[str, Any], runners: int, script: str = "script") -> Preflight:
    """Refuse a split that would lose load; warn about what a split changes.

    =========================================  ========
    scenario                                   outcome
    =========================================  ========
    arrival rate, preAllocatedVUs or maxVUs    error
    below the number of runners
    VUs (or preAllocatedVUs) not a multiple    warning: runners get unequal VUs
    of the number of runners
    shared-iterations                          warning: iterations are split, not shared
    a script with ``setup()``                  warning: setup runs once per runner
    =========================================  ========
    """
    if runners < 2:
        return Preflight(())
    scenarios = options.get("scenarios")
    if not isinstance(scenarios, dict) or not scenarios:
        raise RunError(f"{script}: k6 inspect shows no scenarios to split over {runners} runners")
    warnings: list[str] = []
    errors: list[str] = []
    for name, sc in sorted(scenarios.items()):
        executor = str(sc.get("executor", ""))
        where = f"{script}: scenario {name} ({executor})"
        if executor in ARRIVAL_RATE:
            for key in ("preAllocatedVUs", "maxVUs"):
                value = int(sc.get(key) or 0)
                if value < runners:
                    errors.append(
                        f"{where}: {key}={value} is below {runners} runners: some runner "
                        "would get 0 VUs and its share of the rate would vanish"
                    )
        for key in ("vus", "preAllocatedVUs", "startVUs"):
            value = sc.get(key)
            if isinstance(value, int) and value > 0 and value % runners:
                warnings.append(
                    f"{where}: {key}={value} is not a multiple of {runners}: runners get "
                    "unequal VUs"
                )
        if executor == "shared-iterations":
            warnings.append(
                f"{where}: its iterations are split between the runners, each runner's VUs "
                "share only their runner's part"
            )
    if errors:
        raise RunError("preflight: " + "; ".join(errors))
    warnings.append(f"{script}: setup() and teardown(), if any, run once per runner")
    return Preflight(tuple(warnings))


def render_argv(argv: Sequence[str]) -> str:
    """An argv as one line a user can paste into a shell."""
    return " ".join(shlex.quote(a) for a in argv)
