"""The history dashboard in headless Chromium: every chart renders, with its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread
from playwright.sync_api import Page

from ci.render.dashboard import render_dashboard, write_dashboard
from tests.ci.history.synthetic import step_detection

LINE_BLUE = (0x09, 0x69, 0xDA)
REGRESSION_RED = (0xCF, 0x22, 0x2E)


def _has_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    pixels = (imread(png)[..., :3] * 255).astype(np.int64)
    distance = np.abs(pixels - np.array(rgb)).sum(axis=-1)
    return bool((distance < tolerance).sum() > 20)


def test_the_dashboard_charts_render_with_the_expected_points(page: Page, tmp_path: Path) -> None:
    index = write_dashboard(
        tmp_path / "site",
        render_dashboard(step_detection(), repo_url="https://github.com/acme/search"),
    )
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(index.as_uri())
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    for i in range(2):
        chart = charts.nth(i)
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 600
        assert box["height"] > 150
        points = chart.locator("circle.point")
        assert points.count() == 40
        # every point is drawn inside its chart, left to right in commit order
        xs = []
        for j in range(points.count()):
            p = points.nth(j).bounding_box()
            assert p is not None
            assert p["width"] > 0
            assert box["x"] <= p["x"] <= box["x"] + box["width"]
            assert box["y"] <= p["y"] <= box["y"] + box["height"]
            xs.append(p["x"])
        assert xs == sorted(xs)
    assert charts.nth(0).locator("line.marker.regression").count() == 1
    assert charts.nth(1).locator("line.marker").count() == 0
    assert failed == []
    # the pixels: the series' line and the change point's red marker are on screen
    shot = tmp_path / "chart.png"
    charts.nth(0).screenshot(path=str(shot))
    assert _has_colour(shot, LINE_BLUE)
    assert _has_colour(shot, REGRESSION_RED)
    # the page fits its width: nothing scrolls sideways
    viewport = page.viewport_size
    assert viewport is not None
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
