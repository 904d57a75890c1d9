"""The history store: CSV files that Apache Otava's CSV importer reads as they are.

One file per series, ``<store>/<profile>/<machine class>/<scenario>.csv``: runs of one
profile on one class of machine, one scenario. One row per commit of main, in commit
order, with these columns:

==============  ============================================================================
column          what it holds
==============  ============================================================================
``time``        the commit's time (ISO 8601, UTC): the order of main; Otava's time column
``commit``      the full commit SHA (an Otava attribute, shown beside each change point)
``subject``     the first line of the commit message, or empty (hostile text: escape it)
``run_id``      the ``run.id`` of the results file the row came from
one per metric  the metric's value, in the unit ``ci.judge.metrics`` gives; empty when the
                run did not report it (``perfci history detect`` fills a gap forward, as
                Otava does; Otava's own command line refuses empty cells)
==============  ============================================================================

``otava.yaml`` at the store's root names every series as an Otava test, so that
``otava analyze --config-file otava.yaml <test>`` works on a checkout of the store too.
Files are written atomically (a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ci.errors import ResultsError

FIXED_COLUMNS = ("time", "commit", "subject", "run_id")
OTAVA_CONFIG = "otava.yaml"
# A path segment of the store: profile, machine class and scenario names.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
MAX_STORE_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """Which runs a series holds: one profile, one machine class, one scenario."""

    profile: str
    machine_class: str
    scenario: str

    def __post_init__(self) -> None:
        for name in ("profile", "machine_class", "scenario"):
            value = getattr(self, name)
            if not _SEGMENT.match(value) or value in (".", ".."):
                raise ResultsError(
                    f"{name} {value!r} cannot name a history series: expected letters, "
                    "digits, '.', '_' or '-' (at most 100)"
                )

    def path(self, root: Path) -> Path:
        return root / self.profile / self.machine_class / f"{self.scenario}.csv"

    @property
    def name(self) -> str:
        """The series' name, also its Otava test name: ``profile.machine_class.scenario``."""
        return f"{self.profile}.{self.machine_class}.{self.scenario}"


@dataclass(frozen=True, slots=True)
class Row:
    time: datetime  # aware, UTC
    commit: str
    subject: str
    run_id: str
    values: Mapping[str, float | None]

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ResultsError(f"row of {self.commit}: time {self.time} has no time zone")
        if not _SHA.match(self.commit):
            raise ResultsError(f"commit {self.commit!r} is not a hexadecimal commit SHA")
        for metric, value in self.values.items():
            if value is not None and not math.isfinite(value):
                raise ResultsError(f"row of {self.commit}: {metric} = {value!r} is not finite")


@dataclass(frozen=True, slots=True)
class Series:
    """One stored series: its columns and rows, in commit order."""

    key: SeriesKey
    metrics: tuple[str, ...]
    rows: tuple[Row, ...] = field(default=())

    @property
    def commits(self) -> tuple[str, ...]:
        return tuple(r.commit for r in self.rows)

    def values(self, metric: str) -> list[float | None]:
        return [r.values.get(metric) for r in self.rows]

    def upsert(self, row: Row) -> tuple[Series, bool]:
        """This series with ``row`` added, or replacing the row of the same commit.

        Returns the new series and whether a row was replaced. New metric columns are
        appended in the order the row gives them; rows stay sorted by time (stable).
        """
        metrics = self.metrics + tuple(m for m in row.values if m not in self.metrics)
        kept = [r for r in self.rows if r.commit != row.commit]
        replaced = len(kept) != len(self.rows)
        rows = sorted([*kept, row], key=lambda r: r.time)
        return replace(self, metrics=metrics, rows=tuple(rows)), replaced


# -- reading ---------------------------------------------------------------------------


def list_series(root: Path) -> list[SeriesKey]:
    """Every series in the store, sorted; an empty list for an empty or missing folder."""
    keys = []
    for path in sorted(root.glob("*/*/*.csv")):
        rel = path.relative_to(root)
        keys.append(SeriesKey(rel.parts[0], rel.parts[1], path.stem))
    return sorted(keys)


def read_series(root: Path, key: SeriesKey) -> Series:
    """The stored series ``key``; an empty one when its file does not exist yet."""
    path = key.path(root)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Series(key, ())
    if size > MAX_STORE_FILE_BYTES:
        raise ResultsError(f"{path}: larger than {MAX_STORE_FILE_BYTES} bytes; refusing to read")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from exc
    return parse_series(key, text, str(path))


def parse_series(key: SeriesKey, text: str, source: str) -> Series:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ResultsError(f"{source}: empty file, expected a header row")
    if tuple(header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise ResultsError(
            f"{source}: header starts {header[: len(FIXED_COLUMNS)]}, expected "
            f"{list(FIXED_COLUMNS)}"
        )
    metrics = tuple(header[len(FIXED_COLUMNS) :])
    if len(set(metrics)) != len(metrics) or not all(metrics):
        raise ResultsError(f"{source}: metric columns {list(metrics)} are empty or repeat")
    rows = []
    for line, cells in enumerate(reader, start=2):
        if len(cells) != len(header):
            raise ResultsError(
                f"{source}, line {line}: {len(cells)} cells, the header has {len(header)}"
            )
        time_text, commit, subject, run_id = cells[: len(FIXED_COLUMNS)]
        try:
            time = datetime.fromisoformat(time_text)
        except ValueError as exc:
            raise ResultsError(f"{source}, line {line}: time {time_text!r}: {exc}") from exc
        if time.tzinfo is None:
            raise ResultsError(f"{source}, line {line}: time {time_text!r} has no time zone")
        values: dict[str, float | None] = {}
        for metric, cell in zip(metrics, cells[len(FIXED_COLUMNS) :], strict=True):
            values[metric] = _number(cell, f"{source}, line {line}, {metric}")
        try:
            rows.append(Row(time.astimezone(UTC), commit, subject, run_id, values))
        except ResultsError as exc:
            raise ResultsError(f"{source}, line {line}: {exc}") from exc
    return Series(key, metrics, tuple(rows))


def _number(cell: str, where: str) -> float | None:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        raise ResultsError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ResultsError(f"{where}: {cell!r} is not finite")
    return value


# -- writing ---------------------------------------------------------------------------


def format_series(series: Series) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *series.metrics])
    for row in series.rows:
        cells = [row.time.astimezone(UTC).isoformat(), row.commit, row.subject, row.run_id]
        for metric in series.metrics:
            value = row.values.get(metric)
            cells.append("" if value is None else repr(float(value)))
        writer.writerow(cells)
    return out.getvalue()


def write_series(root: Path, series: Series) -> Path:
    path = series.key.path(root)
    _write_atomic(path, format_series(series))
    return path


def write_otava_config(root: Path, series: Iterable[Series], directions: Mapping[str, str]) -> Path:
    """``otava.yaml``: every series as a CSV test of the metrics ``directions`` names.

    ``directions`` maps a metric to ``"lower"`` or ``"higher"`` (which way is better);
    Otava's direction is 1 when higher is better and -1 when lower is. A column without a
    direction is left out: Otava would otherwise read a rise as better or worse at random.
    """
    lines = [
        "# Written by `perfci history add`: every series of this store as an Otava test.",
        "# otava analyze --config-file otava.yaml <test>   (run from this folder)",
        "tests:",
    ]
    for s in sorted(series, key=lambda s: s.key):
        lines += [
            f"  {_yaml_str(s.key.name)}:",
            "    type: csv",
            f"    file: {_yaml_str(s.key.path(Path()).as_posix())}",
            "    time_column: time",
            "    attributes: [commit]",
            "    metrics:",
        ]
        for metric in s.metrics:
            if metric in directions:
                direction = 1 if directions[metric] == "higher" else -1
                lines += [f"      {_yaml_str(metric)}:", f"        direction: {direction}"]
    path = root / OTAVA_CONFIG
    _write_atomic(path, "\n".join(lines) + "\n")
    return path


def _yaml_str(text: str) -> str:
    # Names are restricted to _SEGMENT characters (and metric names to identifiers), so a
    # double-quoted scalar needs no escapes; refuse anything else rather than guess.
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", text):
        raise ResultsError(f"{text!r} cannot be written to {OTAVA_CONFIG}")
    return f'"{text}"'


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_all(root: Path, keys: Sequence[SeriesKey] | None = None) -> list[Series]:
    return [read_series(root, k) for k in (list_series(root) if keys is None else keys)]
