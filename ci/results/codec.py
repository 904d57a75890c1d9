"""Reading and writing results files: untrusted input in, validated models out.

Everything after ``results.json`` (judge, render, post) works from these files alone, so
they are treated as untrusted: the size is bounded before parsing, non-finite and
overflowing numbers are refused while parsing, and the document is validated
(:mod:`ci.results.validate`) before msgspec builds the model from it. Every problem is a
:class:`ResultsError` naming the file and, where there is one, the JSON path.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from ci.errors import ResultsError
from ci.results.model import RunResults

MAX_RESULTS_BYTES = 50 * 1024 * 1024


def load_results(path: str | os.PathLike[str]) -> RunResults:
    """Read, validate and build one results file; every problem is a :class:`ResultsError`."""
    source = os.fspath(path)
    data = _read_json(source)
    return RunResults.from_dict(data, source)


def loads_results(text: str | bytes, source: str = "<results>") -> RunResults:
    """Like :func:`load_results` for an in-memory document."""
    if len(text) > MAX_RESULTS_BYTES:
        raise ResultsError(f"{source}: larger than {_limit_text()}; refusing to parse")
    return RunResults.from_dict(_parse_json(text, source), source)


def dump_results(results: RunResults, path: str | os.PathLike[str]) -> None:
    """Write ``results`` atomically (temp file in the same folder, then ``os.replace``)."""
    target = Path(path)
    data = results.to_dict()
    # Never write what we would refuse to read.
    RunResults.from_dict(data, os.fspath(target))
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_file(path: str | os.PathLike[str]) -> object:
    """Read an untrusted JSON file with the same limits as results files."""
    return _read_json(os.fspath(path))


def _read_json(source: str) -> object:
    try:
        with open(source, "rb") as fh:
            raw = fh.read(MAX_RESULTS_BYTES + 1)
    except OSError as exc:
        raise ResultsError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_RESULTS_BYTES:
        raise ResultsError(f"{source}: larger than {_limit_text()}; refusing to parse")
    return _parse_json(raw, source)


def _limit_text() -> str:
    mb, rest = divmod(MAX_RESULTS_BYTES, 1024 * 1024)
    return f"{mb} MB" if not rest else f"{MAX_RESULTS_BYTES} bytes"


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows to {value}")
    return value


def _parse_json(raw: str | bytes, source: str) -> object:
    # The standard parser, not msgspec's: its hooks refuse NaN, Infinity and overflowing
    # numbers while parsing, and its messages give the line and column.
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{source}: not valid UTF-8 at byte {exc.start}") from exc
    except RecursionError as exc:
        raise ResultsError(f"{source}: JSON nested too deeply") from exc
    except ValueError as exc:  # from our hooks, or int() digit limits
        raise ResultsError(f"{source}: bad JSON number: {exc}") from exc
