"""A run's report.html in headless Chromium: every plot renders, nothing is wider than the page."""

from __future__ import annotations

from pathlib import Path

import msgspec
from playwright.sync_api import Page

from ci.measure.collect import latency_histogram
from ci.render.html import render_run_report
from ci.results import (
    Diagnostics,
    ProfileLink,
    RunResults,
    ScenarioStatements,
    Statement,
    load_results,
)

RESULTS = Path(__file__).resolve().parents[1] / "resources" / "results" / "base-1.json"
WIDTH = 800  # the old tables were 949 px wide here


def _run() -> RunResults:
    run = load_results(RESULTS)
    hist = latency_histogram([1.0 + (i % 97) * 0.7 for i in range(3000)])
    scenarios = tuple(msgspec.structs.replace(s, latency_histogram=hist) for s in run.scenarios)
    # a statement without spaces for hundreds of characters: the widest a table cell gets
    query = "SELECT " + "x" * 600 + " FROM documents"
    diagnostics = Diagnostics(
        profiles=(ProfileLink("k6 web dashboard: search", "search.k6-dashboard.html"),),
        statements=(ScenarioStatements("search", (Statement(query, 10, 12.5, 1.25, 10),)),),
    )
    return msgspec.structs.replace(
        run, scenarios=scenarios, schema_version=3, diagnostics=diagnostics
    )


def test_a_run_reports_plots_render_and_fit_the_page(page: Page, tmp_path: Path) -> None:
    run = _run()
    report = tmp_path / "report.html"
    report.write_text(render_run_report(run), encoding="utf-8")
    page.set_viewport_size({"width": WIDTH, "height": 800})
    page.goto(report.as_uri())
    images = page.locator("figure img")
    # per scenario: latency and throughput over time, RSS and CPU over time, the histogram
    assert images.count() == 5 * len(run.scenarios)
    for i in range(images.count()):
        img = images.nth(i)
        img.scroll_into_view_if_needed()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), img.get_attribute("alt")
        box = img.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["x"] + box["width"] <= WIDTH
    captions = page.locator("figcaption").all_inner_texts()
    for s in run.scenarios:
        for what in ("latency over time", "throughput over time", "RSS over time",
                     "CPU over time", "latency histogram"):  # fmt: skip
            assert f"{s.name}: {what}" in captions
    assert page.locator("a[href='search.k6-dashboard.html']").count() == 1
    # the tables never make the page scroll sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000
