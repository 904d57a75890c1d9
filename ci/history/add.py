"""``perfci history add``: one results file becomes one row per scenario of the store.

The row's time is the commit's own time when git knows the commit (so a backfilled
commit lands where it belongs in main's order), else the run's ``created_at``. Adding
the same commit again replaces its row: adding is idempotent.

A results file of another profile or machine class than the store expects is refused:
its figures would be a step in the series that no commit caused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ci.errors import MetadataMismatch, ResultsError
from ci.history.store import Row, SeriesKey, list_series, read_series, write_otava_config
from ci.history.store import write_series as _write_series
from ci.judge.metrics import EXTRACTORS
from ci.results import RunResults

MAX_SUBJECT = 200


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    time: datetime | None  # None: git does not know the commit
    subject: str


@dataclass(frozen=True, slots=True)
class AddOutcome:
    key: SeriesKey
    path: Path
    replaced: bool  # the commit had a row already
    rows: int  # rows in the series now
    metrics: tuple[str, ...]  # metrics the run reported for this scenario


def commit_info(repo: Path | None, sha: str) -> CommitInfo:
    """The commit's full SHA, committer time and subject from git; only ``sha`` without git."""
    if repo is not None:
        proc = subprocess.run(
            ["git", "-C", str(repo), "show", "-s", "--format=%H%n%cI%n%s", f"{sha}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = proc.stdout.splitlines()
        if proc.returncode == 0 and len(lines) >= 2:
            subject = lines[2] if len(lines) > 2 else ""
            return CommitInfo(lines[0], datetime.fromisoformat(lines[1]).astimezone(UTC), subject)
    return CommitInfo(sha.lower(), None, "")


def scenario_values(results: RunResults) -> dict[str, dict[str, float]]:
    """scenario -> {metric: value} for every known metric the scenario reports."""
    out: dict[str, dict[str, float]] = {}
    for scenario in results.scenarios:
        values: dict[str, float] = {}
        for metric, extract in EXTRACTORS.items():
            value = extract(scenario)
            if value is not None:
                values[metric] = float(value)
        out[scenario.name] = values
    return out


def check_metadata(
    results: RunResults, source: str, *, profile: str | None, machine_class: str | None
) -> None:
    """Refuse a run of another profile or machine class than the one expected."""
    if profile is not None and results.run.profile != profile:
        raise MetadataMismatch(
            f"{source}: a run of profile {results.run.profile!r}, but this history is of "
            f"profile {profile!r} (perf.toml [history] profile, or --profile): runs of "
            "different profiles are different series and never mixed"
        )
    actual = results.run.machine.machine_class
    if machine_class is not None and actual != machine_class:
        raise MetadataMismatch(
            f"{source}: measured on machine class {actual!r}, but this history is of "
            f"{machine_class!r} (--machine-class or PERFCI_MACHINE_CLASS): figures of "
            "different machines are never mixed in one series"
        )


def add_results(
    store: Path,
    results: RunResults,
    commit: CommitInfo,
    *,
    source: str,
    profile: str | None,
    machine_class: str | None,
    directions: Mapping[str, str],
) -> list[AddOutcome]:
    """Add (or replace) ``commit``'s row in the series of every scenario of ``results``.

    ``directions`` (metric -> "lower"/"higher") goes into the store's ``otava.yaml``.
    """
    check_metadata(results, source, profile=profile, machine_class=machine_class)
    if commit.time is not None:
        when = commit.time
    else:
        try:
            when = datetime.fromisoformat(results.run.created_at).astimezone(UTC)
        except ValueError as exc:
            raise ResultsError(f"{source}: run.created_at {results.run.created_at!r}") from exc
    subject = " ".join(commit.subject.split())[:MAX_SUBJECT]
    outcomes = []
    for scenario, values in scenario_values(results).items():
        key = SeriesKey(results.run.profile, results.run.machine.machine_class, scenario)
        row = Row(when, commit.sha, subject, results.run.id, values)
        series, replaced = read_series(store, key).upsert(row)
        path = _write_series(store, series)
        outcomes.append(AddOutcome(key, path, replaced, len(series.rows), tuple(values)))
    write_otava_config(store, [read_series(store, k) for k in list_series(store)], directions)
    return outcomes
