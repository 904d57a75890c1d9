"""Which files are judged: folders expanded, benchmark files told apart, report folders read.

A report folder holds the inputs it was judged from (``inputs/base-N.json``,
``inputs/candidate-N.json``), so that ``perfci comment`` on another runner re-validates and
re-judges them instead of trusting rendered text from an artifact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ci.errors import ResultsError
from ci.results import read_json_file

INPUTS = "inputs"


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders contribute every ``results.json`` under them, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob("results.json"))
            if not found:
                raise ResultsError(f"{path}: no results.json under this folder")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise ResultsError(f"{path}: no such file or folder")
    return out


def is_benchmark_file(path: Path) -> bool:
    data = read_json_file(path)
    return isinstance(data, dict) and "benchmarks" in data and "machine_info" in data


def report_inputs(report: Path) -> tuple[list[Path], list[Path]]:
    """The base and candidate files a report folder was judged from."""
    inputs = report / INPUTS

    def numbered(prefix: str) -> list[Path]:
        files = list(inputs.glob(f"{prefix}-*.json"))
        try:
            return sorted(files, key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        except ValueError as exc:
            raise ResultsError(f"{inputs}: unexpected file name among {files}") from exc

    base, cand = numbered("base"), numbered("candidate")
    if not base or not cand:
        raise ResultsError(
            f"{report}: not a report folder (expected {INPUTS}/base-N.json and "
            f"{INPUTS}/candidate-N.json, written by `perfci compare --report`)"
        )
    return base, cand
