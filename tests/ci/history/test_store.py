"""ci.history.store: the CSV layout, its strict reading, and Otava's own importer on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from otava.config import load_tests
from otava.importer import CsvImporter
from ruamel.yaml import YAML

from ci.errors import ResultsError
from ci.history.store import (
    OTAVA_CONFIG,
    Row,
    Series,
    SeriesKey,
    format_series,
    list_series,
    parse_series,
    read_series,
    write_otava_config,
    write_series,
)

KEY = SeriesKey("pr", "local-2cpu", "arrival_rate")
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _row(i: int, **values: float | None) -> Row:
    return Row(T0 + timedelta(hours=i), f"{i:040x}", f"commit {i}", f"run-{i}", values)


def test_rows_round_trip_through_the_csv_file(tmp_path: Path) -> None:
    series = Series(KEY, ("latency_p95", "error_rate"))
    for i in range(3):
        series, replaced = series.upsert(_row(i, latency_p95=10.0 + i, error_rate=0.0))
        assert not replaced
    path = write_series(tmp_path, series)
    assert path == tmp_path / "pr" / "local-2cpu" / "arrival_rate.csv"
    assert path.read_text().splitlines()[0] == "time,commit,subject,run_id,latency_p95,error_rate"
    again = read_series(tmp_path, KEY)
    assert again == series
    assert list_series(tmp_path) == [KEY]


def test_the_same_commit_replaces_its_row_and_rows_stay_in_time_order() -> None:
    series = Series(KEY, ())
    for i in (2, 0, 1):
        series, _ = series.upsert(_row(i, latency_p95=float(i)))
    assert series.commits == tuple(f"{i:040x}" for i in (0, 1, 2))
    series, replaced = series.upsert(_row(1, latency_p95=99.0, cpu_ms_per_request=3.0))
    assert replaced
    assert len(series.rows) == 3
    assert series.values("latency_p95") == [0.0, 99.0, 2.0]
    # a metric new to the series is a new column; older rows have no value for it
    assert series.metrics == ("latency_p95", "cpu_ms_per_request")
    assert series.values("cpu_ms_per_request") == [None, 3.0, None]


def test_hostile_subjects_survive_the_csv_quoting() -> None:
    subject = 'a,"b"\nc =cmd|x <script>'
    series, _ = Series(KEY, ()).upsert(Row(T0, "ab" * 20, subject, "run", {"latency_p95": 1.0}))
    again = parse_series(KEY, format_series(series), "mem")
    assert again.rows[0].subject == subject


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("when,commit,subject,run_id\n", "header starts"),
        ("time,commit,subject,run_id,a,a\n", "empty or repeat"),
        (
            "time,commit,subject,run_id,a\n2026-11-01T00:00:00+00:00,abcdef0,s,r\n",
            "line 2: 4 cells",
        ),
        ("time,commit,subject,run_id,a\nyesterday,abcdef0,s,r,1\n", "time 'yesterday'"),
        (
            "time,commit,subject,run_id,a\n2026-11-01T00:00:00+00:00,xyz,s,r,1\n",
            "not a hexadecimal",
        ),
        (
            "time,commit,subject,run_id,a\n2026-11-01T00:00:00+00:00,abcdef0,s,r,fast\n",
            "not a number",
        ),
        ("time,commit,subject,run_id,a\n2026-11-01T00:00:00+00:00,abcdef0,s,r,nan\n", "not finite"),
        ("time,commit,subject,run_id,a\n2026-11-01T00:00:00,abcdef0,s,r,1\n", "no time zone"),
    ],
)
def test_a_malformed_store_file_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ResultsError, match=message):
        parse_series(KEY, text, "store.csv")


@pytest.mark.parametrize("bad", ["", "..", "a/b", "-x", "x y", "é"])
def test_names_that_cannot_be_a_path_segment_are_refused(bad: str) -> None:
    with pytest.raises(ResultsError, match="cannot name a history series"):
        SeriesKey("pr", bad, "arrival_rate")


def test_otavas_own_csv_importer_reads_the_store_as_written(tmp_path: Path) -> None:
    series = Series(KEY, ())
    for i in range(5):
        series, _ = series.upsert(_row(i, latency_p95=10.0 + i, throughput_rps=50.0 - i))
    write_series(tmp_path, series)
    config = write_otava_config(
        tmp_path, [series], {"latency_p95": "lower", "throughput_rps": "higher"}
    )
    assert config == tmp_path / OTAVA_CONFIG
    tests = load_tests(YAML(typ="safe").load(config.read_text()), {})
    test = tests[KEY.name]
    test.file = str(tmp_path / test.file)  # otava resolves it from its working directory
    imported = CsvImporter().fetch_data(test)
    assert imported.data == {"latency_p95": series.values("latency_p95"),
                             "throughput_rps": series.values("throughput_rps")}  # fmt: skip
    assert imported.attributes["commit"] == list(series.commits)
    assert imported.time == [int(r.time.timestamp()) for r in series.rows]
    assert imported.metrics["latency_p95"].direction == -1
    assert imported.metrics["throughput_rps"].direction == 1


def test_otava_config_leaves_out_a_column_without_a_direction(tmp_path: Path) -> None:
    series, _ = Series(KEY, ()).upsert(_row(0, latency_p95=10.0, throughput_rps=50.0))
    config = write_otava_config(tmp_path, [series], {"latency_p95": "lower"})
    tests = load_tests(YAML(typ="safe").load(config.read_text()), {})
    assert list(tests[KEY.name].metrics) == ["latency_p95"]
