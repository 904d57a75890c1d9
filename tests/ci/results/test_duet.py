"""The duet file: validated when built and when read, written atomically, read back equal."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ci.errors import ResultsError
from ci.results.duet import (
    DuetRun,
    SidePlacement,
    SideWindow,
    Timing,
    WindowLatency,
    dump_duet,
    load_duet,
)
from tests.ci.judge.duet_factory import drawn_run, side


def test_round_trip(tmp_path: Path) -> None:
    run = drawn_run(12)
    dump_duet(run, tmp_path / "windows.json")
    again = load_duet(tmp_path / "windows.json")
    assert again == run
    assert len(again.measured) == 12
    assert not (tmp_path / ".windows.json.tmp").exists()


def test_the_placement_is_kept_and_a_file_without_one_still_loads(tmp_path: Path) -> None:
    placement = {
        "base": SidePlacement("side2", 40002, 40004, 0, "0", (2, 3)),
        "candidate": SidePlacement("side1", 40001, 40003, 1, "0", (0, 1)),
    }
    run = msgspec.structs.replace(drawn_run(3), placement=placement)
    dump_duet(run, tmp_path / "windows.json")
    assert load_duet(tmp_path / "windows.json").placement == placement
    data = msgspec.to_builtins(run)
    del data["placement"]
    (tmp_path / "old.json").write_bytes(msgspec.json.encode(data))
    assert load_duet(tmp_path / "old.json").placement is None


def test_side_figures() -> None:
    s = side(cpu_ms=2.0, failed=11, samples=1100, stream_ms=None)
    assert s.requests == 1155  # 1,100 searches, 11 failed ones, 22 writes of 2 requests
    assert s.error_rate == pytest.approx(11 / 1155)
    assert s.cpu_ms_per_request == pytest.approx(2.0)


def test_rss_growth_is_read_over_the_arrivals_when_they_end_before_the_bursts() -> None:
    lat = WindowLatency(samples=1000, p50=1.0, p90=2.0, p95=3.0, p99=4.0, mean=1.5, maximum=5.0)
    burst = Timing(samples=150, p50=100.0, p90=200.0, p95=210.0, maximum=230.0)
    whole = SideWindow(
        requests=1150,
        searches=1150,
        failed=0,
        cpu_s=1.0,
        latency_ms=lat,
        burst_ms=burst,
        rss_start_mb=100.0,
        rss_end_mb=110.0,
    )
    assert whole.rss_kb_per_1k_requests == pytest.approx(10 * 1024 / 1150 * 1000)
    # the bursts' cache filling (the last 8 MB) stays out; 1,000 arrival requests
    arrivals = msgspec.structs.replace(whole, rss_arrivals_end_mb=102.0)
    assert arrivals.rss_kb_per_1k_requests == pytest.approx(2 * 1024)
    only_bursts = msgspec.structs.replace(
        arrivals, burst_ms=msgspec.structs.replace(burst, samples=1150)
    )
    assert only_bursts.rss_kb_per_1k_requests is None


def test_a_negative_valkey_command_count_is_refused() -> None:
    with pytest.raises(ValueError, match="valkey_calls = -1: must be >= 0"):
        msgspec.structs.replace(side(), valkey_calls=-1)


def test_percentiles_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="percentiles out of order"):
        WindowLatency(samples=10, p50=5, p90=4, p95=6, p99=7, mean=5, maximum=8)


def test_counts_out_of_range_are_refused() -> None:
    lat = WindowLatency(samples=1, p50=1, p90=1, p95=1, p99=1, mean=1, maximum=1)
    with pytest.raises(ValueError, match="counts out of range"):
        SideWindow(requests=1, searches=1, failed=2, cpu_s=0.1, latency_ms=lat)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=9), "version 9"),
        (lambda d: d["windows"][1].update(index=5), r"windows\[1\]\.index = 5"),
        (lambda d: d["windows"][0]["base"].update(extra=1), "extra"),
        (lambda d: d["windows"][0]["base"].update(cpu_s="x"), "cpu_s"),
        (lambda d: d["windows"][0].update(slot_a="left"), "slot_a"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    data = msgspec.to_builtins(drawn_run(3))
    edit(data)
    path = tmp_path / "windows.json"
    path.write_text(msgspec.json.encode(data).decode())
    with pytest.raises(ResultsError, match=message):
        load_duet(path)


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "windows.json"
    path.write_text("{")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_duet(path)
    assert isinstance(drawn_run(1), DuetRun)
