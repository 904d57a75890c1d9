from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ci.render.html import render_run_report
from ci.results import LatencyHistogram, RunResults, load_results

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
HOSTILE = [
    "</details><img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "@org/team",
    "| broken | table |",
    "x" * 10_000,
    "feature\nnew line\r\n## heading",
    "`code` ```fence```",
    "![img](http://evil/x.png)",
    "\u202eevil",
]


@pytest.fixture(scope="module")
def run() -> RunResults:
    return load_results(RESOURCES / "results" / "base-1.json")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_in_html(run: RunResults, text: str) -> None:
    evil = msgspec.structs.replace(
        run,
        run=msgspec.structs.replace(run.run, id=text, settings={text: text}),
        scenarios=(msgspec.structs.replace(run.scenarios[0], name=text, timeseries=()),),
    )
    html = render_run_report(evil)
    assert "<img src=x" not in html
    if "<" in text:
        assert "&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_run_report(run: RunResults) -> None:
    one = msgspec.structs.replace(run, scenarios=run.scenarios[:1])
    html = render_run_report(one)
    assert "Performance run base-1" in html
    # latency, throughput, RSS and CPU over time (no histogram: a version 1 file)
    assert html.count('<img src="data:image/png;base64,') == 4
    assert "cache_enabled" in html
    hist = LatencyHistogram((1.0, 2.0, 4.0, 8.0), (10, 30, 5))
    with_hist = msgspec.structs.replace(
        one, scenarios=(msgspec.structs.replace(one.scenarios[0], latency_histogram=hist),)
    )
    html = render_run_report(with_hist)
    assert html.count('<img src="data:image/png;base64,') == 5
    assert "search: latency histogram" in html
    for caption in ("latency over time", "throughput over time", "RSS over time", "CPU over time"):
        assert f"search: {caption}" in html
    assert "<script" not in html
