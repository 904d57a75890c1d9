"""The k6 scripts take the SLA from PERFCI_SLA_* when set, else from the repository's perf.toml,
so that docs/capacity.md's `k6 run scenarios/load_test_comprehensive.js` works by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ci.measure.k6 import find_k6
from ci.settings import repo_sla

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"

pytestmark = pytest.mark.timeout(60)


def _inspect(script: Path, *env: str) -> subprocess.CompletedProcess[str]:
    args = [str(find_k6()), "inspect"]
    for kv in env:
        args += ["-e", kv]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERFCI_SLA_")}
    return subprocess.run(
        [*args, str(script)], capture_output=True, text=True, cwd="/", env=clean, check=False
    )


def _thresholds(script: Path, *env: str) -> dict[str, Any]:
    proc = _inspect(script, *env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    options: dict[str, Any] = json.loads(proc.stdout)
    thresholds: dict[str, Any] = options["thresholds"]
    return thresholds


def test_without_variables_the_scripts_read_perf_toml() -> None:
    sla = repo_sla()
    thresholds = _thresholds(SCENARIOS / "sse.js")
    assert thresholds["search_sse_ttfe"] == [f"p(95)<{sla.ttfe_p95_ms:g}"]
    assert thresholds["http_req_failed"] == [f"rate<{sla.error_rate:g}"]
    combined = _thresholds(SCENARIOS / "load_test_comprehensive.js")
    assert combined["search_sse_ttfe{scenario:sse}"] == [f"p(95)<{sla.ttfe_p95_ms:g}"]


def test_a_variable_wins_over_perf_toml() -> None:
    thresholds = _thresholds(SCENARIOS / "sse.js", "PERFCI_SLA_TTFE_P95_MS=777")
    assert thresholds["search_sse_ttfe"] == ["p(95)<777"]


def test_a_bad_variable_is_named() -> None:
    proc = _inspect(SCENARIOS / "sse.js", "PERFCI_SLA_TTFE_P95_MS=soon")
    assert proc.returncode != 0
    assert "PERFCI_SLA_TTFE_P95_MS=soon is invalid" in proc.stdout + proc.stderr


def test_without_perf_toml_or_variables_every_missing_one_is_named(tmp_path: Path) -> None:
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    proc = _inspect(tmp_path / "scenarios" / "sse.js")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "PERFCI_SLA_P95_MS, PERFCI_SLA_P99_MS" in out
    assert "not set and not in perf.toml [sla]" in out
