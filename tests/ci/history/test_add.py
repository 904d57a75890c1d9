"""ci.history.add: results files become rows; other profiles and machines are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.errors import MetadataMismatch
from ci.history.add import AddOutcome, CommitInfo, add_results, commit_info, scenario_values
from ci.history.store import SeriesKey, list_series, read_series
from ci.results import RunResults
from tests.ci.conftest import ResultsDictFactory

REPO = Path(__file__).resolve().parents[3]
SHA = "ab" * 20


def _add(store: Path, results: RunResults, machine_class: str | None = None) -> list[AddOutcome]:
    info = CommitInfo(SHA, None, "subject")
    return add_results(
        store, results, info, source="r.json", profile="pr", machine_class=machine_class,
        directions={},
    )  # fmt: skip


def test_one_row_per_scenario_with_every_metric_it_reports(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    results = RunResults.from_dict(results_dict(scenarios=("search", "stream")))
    _add(tmp_path, results)
    keys = list_series(tmp_path)
    assert [k.scenario for k in keys] == ["search", "stream"]
    search = read_series(tmp_path, SeriesKey("pr", "2cpu-24gb-x86_64", "search"))
    assert search.commits == (SHA,)
    row = search.rows[0]
    assert row.values == scenario_values(results)["search"]
    assert row.values["latency_p95"] == 100.0
    assert "cpu_ms_per_request" in row.values  # from the resource samples
    # no time from git (unknown commit): the run's own time
    assert row.time.isoformat() == "2026-11-27T10:00:00+00:00"
    assert (tmp_path / "otava.yaml").exists()


def test_adding_the_same_commit_again_is_idempotent(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    results = RunResults.from_dict(results_dict(scenarios=("search",)))
    first = _add(tmp_path, results)
    path = first[0].path
    text = path.read_text()
    again = _add(tmp_path, results)
    assert again[0].replaced
    assert again[0].rows == 1
    assert path.read_text() == text


def test_a_run_of_another_profile_is_refused(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    results = RunResults.from_dict(results_dict(profile="smoke"))
    with pytest.raises(MetadataMismatch, match=r"r\.json: a run of profile 'smoke'.*'pr'"):
        _add(tmp_path, results)
    assert list_series(tmp_path) == []


def test_a_run_of_another_machine_class_is_refused(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    results = RunResults.from_dict(results_dict(machine_class="laptop-8cpu"))
    with pytest.raises(MetadataMismatch, match=r"machine class 'laptop-8cpu'.*'ci-4cpu'"):
        _add(tmp_path, results, machine_class="ci-4cpu")
    _add(tmp_path, results, machine_class="laptop-8cpu")
    assert [k.machine_class for k in list_series(tmp_path)] == ["laptop-8cpu"] * 2


def test_git_gives_a_known_commit_its_own_time_and_subject() -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%H%x00%ct%x00%s"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split("\0")  # fmt: skip
    info = commit_info(REPO, head[0][:12])
    assert info.sha == head[0]
    assert info.time is not None
    assert int(info.time.timestamp()) == int(head[1])
    assert info.subject == head[2]
    unknown = commit_info(REPO, "0" * 40)
    assert (unknown.sha, unknown.time, unknown.subject) == ("0" * 40, None, "")
