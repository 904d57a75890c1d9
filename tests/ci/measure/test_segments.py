"""The runner argv builder and preflight (real ``k6 inspect``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import main
from ci.errors import RunError
from ci.measure import k6, segments


def test_segments_cover_zero_to_one_in_order() -> None:
    assert segments.segment_sequence(1) == "0,1"
    assert segments.segment_sequence(4) == "0,1/4,1/2,3/4,1"
    assert [segments.segment(3, i) for i in (1, 2, 3)] == ["0:1/3", "1/3:2/3", "2/3:1"]
    with pytest.raises(RunError, match="runner 4 of 3"):
        segments.segment(3, 4)


def test_runner_argv_is_the_whole_command() -> None:
    spec = segments.RunnerSpec("/s/arrival_rate.js", 2, "t")
    argv = segments.runner_argv(spec, 2, address="127.0.0.1:7000", raw_path="r2.csv.gz")
    assert argv == [
        "k6", "run", "--quiet",
        "--execution-segment=1/2:1", "--execution-segment-sequence=0,1/2,1",
        "--no-thresholds", "--no-color", "--summary-trend-stats", k6.TREND_STATS,
        "--out", "csv=r2.csv.gz",
        "/s/arrival_rate.js", "--address=127.0.0.1:7000", "--paused",
        "--tag", "instance_id=2", "--tag", "testrun_name=t",
    ]  # fmt: skip
    one = segments.runner_argv(segments.RunnerSpec("s.js", 1, "t"), 1, address="a:1", raw_path="r")
    assert not any(a.startswith("--execution-segment") for a in one)


SCRIPT = """
export const options = {{ scenarios: {{
  open: {{ executor: 'constant-arrival-rate', rate: 10, timeUnit: '1s', duration: '1s',
          preAllocatedVUs: {pre}, maxVUs: {max} }},
  shared: {{ executor: 'shared-iterations', vus: 3, iterations: 9 }},
}} }};
export default function () {{}}
"""


def _options(tmp_path: Path, pre: int, max_vus: int) -> dict[str, object]:
    script = tmp_path / "s.js"
    script.write_text(SCRIPT.format(pre=pre, max=max_vus))
    return segments.inspect_options(k6.find_k6(), script, {})


def test_preflight_refuses_fewer_preallocated_vus_than_runners(tmp_path: Path) -> None:
    options = _options(tmp_path, pre=1, max_vus=4)
    with pytest.raises(RunError, match=r"preAllocatedVUs=1 is below 2 runners"):
        segments.preflight(options, 2, "s.js")
    assert segments.preflight(options, 1).warnings == ()  # one runner: nothing to split


def test_preflight_warns_about_what_a_split_changes(tmp_path: Path) -> None:
    warnings = segments.preflight(_options(tmp_path, pre=2, max_vus=4), 2, "s.js").warnings
    text = "\n".join(warnings)
    assert "shared (shared-iterations): its iterations are split" in text
    assert "vus=3 is not a multiple of 2" in text
    assert "setup() and teardown(), if any, run once per runner" in text


def test_cli_preflight_error_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the test profile's arrival_rate.js pre-allocates 5 VUs: 6 runners cannot share them
    code = main([
        "run", "--profile", "test", "--scenario", "arrival_rate", "--runners", "6",
        "--out", str(tmp_path), "--target", "http://127.0.0.1:9",
    ])  # fmt: skip
    assert code == 2
    assert "preAllocatedVUs=5 is below 6 runners" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no run folder, no stack, no load


def test_cli_dry_run_prints_each_runner(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--profile", "test", "--scenario", "arrival_rate", "--runners", "2",
                 "--dry-run"])  # fmt: skip
    assert code == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("k6 run")]
    assert len(lines) == 2
    assert "--execution-segment=0:1/2" in lines[0]
    assert "--execution-segment=1/2:1" in lines[1]
