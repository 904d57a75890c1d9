"""The micro-benchmark script as each side runs it: this venv's python, a worktree as the
working directory, only that worktree's ``service`` imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ci.experiments.gate.micro import MICRO_SCRIPT
from tests.ci.experiments.gate.code_copies import REPO, STDLIB_JSON, code_copy

pytestmark = [pytest.mark.timeout(120)]
CASES = ["search_response", "stream_frame", "cache_round_trip", "parse_search"]


def _run(code_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MICRO_SCRIPT)],
        cwd=code_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_case_runs_on_the_repository_s_own_service() -> None:
    done = _run(REPO)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert list(figures) == CASES
    for case, seconds in figures.items():
        assert isinstance(seconds, float), case
        assert 1e-8 < seconds < 1e-3, (case, seconds)  # a hot-path call: ns to a few us


def test_the_side_s_own_code_is_timed_and_a_case_it_lacks_is_missing(tmp_path: Path) -> None:
    # the worktree's service/, not the one this venv has installed: without
    # service/http/stream.py its stream_frame is missing, and its search answers are
    # encoded by the standard library
    root = code_copy(tmp_path, {"service/http/stream.py": None, **STDLIB_JSON})
    done = _run(root)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["stream_frame"] is None
    assert "stream_frame: missing on this side: ModuleNotFoundError" in done.stderr
    assert all(figures[c] is not None for c in CASES if c != "stream_frame")


def test_a_side_whose_code_breaks_exits_non_zero(tmp_path: Path) -> None:
    broken = {
        "service/model.py": (
            "def row_dict(row: Row) -> dict[str, Any]:\n",
            "def row_dict(row: Row) -> dict[str, Any]:\n    raise RuntimeError('broken')\n",
        )
    }
    done = _run(code_copy(tmp_path, broken))
    assert done.returncode != 0
    assert "RuntimeError: broken" in done.stderr
