from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import pytest

from ci.judge.compare import Comparison
from ci.judge.sla import check_sla
from ci.judge.verdict import Judgement, judge_runs, judgement
from ci.render.environment import RenderContext
from ci.render.html import render_html_report, render_run_report
from ci.results import LatencyHistogram, RunResults, load_results
from ci.settings import PerfConfig

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
CONTEXT = RenderContext(
    repository="acme/search",
    pr_number=17,
    pr_title="Faster cache",
    base_ref="main",
    head_ref="feature/faster_cache",
    run_url="https://github.com/acme/search/actions/runs/1",
    artifact_url="https://github.com/acme/search/actions/runs/1/artifacts/2",
)
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


def _load(side: str) -> list[RunResults]:
    return [load_results(p) for p in sorted((RESOURCES / "results").glob(f"{side}-*.json"))]


@pytest.fixture(scope="module")
def runs() -> tuple[list[RunResults], list[RunResults]]:
    return _load("base"), _load("cand")


@pytest.fixture(scope="module")
def judged(runs: tuple[list[RunResults], list[RunResults]]) -> Judgement:
    return judge_runs(runs[0], runs[1], PerfConfig(), seed=42)


@pytest.fixture(scope="module")
def comparison(judged: Judgement) -> Comparison:
    return judged.comparison


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_in_html(
    runs: tuple[list[RunResults], list[RunResults]], text: str
) -> None:
    run = runs[0][0]
    evil = msgspec.structs.replace(
        run,
        run=msgspec.structs.replace(run.run, id=text, settings={text: text}),
        scenarios=(msgspec.structs.replace(run.scenarios[0], name=text, timeseries=()),),
    )
    html = render_run_report(evil)
    assert "<img src=x" not in html
    if "<" in text:
        assert "&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_html_comparison_report_embeds_every_plot(
    runs: tuple[list[RunResults], list[RunResults]], comparison: Comparison
) -> None:
    base, cand = runs
    one = [msgspec.structs.replace(r, scenarios=r.scenarios[:1]) for r in base]
    two = [msgspec.structs.replace(r, scenarios=r.scenarios[:1]) for r in cand]
    comp = dataclasses.replace(comparison, scenarios=comparison.scenarios[:1])
    judged = judgement(comp, check_sla(two, PerfConfig().sla), one, two)
    html = render_html_report(judged, CONTEXT)
    assert html.startswith("<!DOCTYPE html>")
    # distributions, latency, throughput, RSS and CPU for the one scenario
    assert html.count('<img src="data:image/png;base64,') == 5
    for caption in (
        "per-run figures",
        "latency over time",
        "throughput over time",
        "RSS over time",
        "CPU over time",
    ):
        assert f"search: {caption}" in html
    assert "<script" not in html
    assert 'href="https://github.com/acme/search/actions/runs/1/artifacts/2"' in html


def test_run_report(runs: tuple[list[RunResults], list[RunResults]]) -> None:
    run = runs[0][0]
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
