"""ci.render.dashboard: the static history site, its escaping and its self-containment."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ci.render.dashboard import build_chart, render_dashboard, write_dashboard
from tests.ci.history.synthetic import sha, step_detection

HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)> @org/team'


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_one_chart_per_metric_with_a_point_per_commit_and_the_change_marked() -> None:
    html = render_dashboard(step_detection(), repo_url="https://github.com/acme/search")
    page = _parse(html)
    charts = [a for t, a in page.tags if t == "svg"]
    assert [c["data-metric"] for c in charts] == ["latency_p95", "throughput_rps"]
    assert [c["data-points"] for c in charts] == ["40", "40"]
    assert [c["data-change-points"] for c in charts] == ["1", "0"]
    assert sum(1 for t, a in page.tags if t == "circle" and a.get("class") == "point") == 80
    markers = [a for t, a in page.tags if t == "line" and "marker" in (a.get("class") or "")]
    assert [m["class"] for m in markers] == ["marker regression"]
    # one noise band per stretch between change points: 2 for p95, 1 for throughput
    assert sum(1 for t, a in page.tags if t == "polygon") == 3
    assert "Open regressions" in html


def test_points_and_change_points_link_to_their_commits() -> None:
    html = render_dashboard(step_detection(), repo_url="https://github.com/acme/search")
    hrefs = [a["href"] for t, a in _parse(html).tags if t == "a"]
    assert f"https://github.com/acme/search/commit/{sha(25)}" in hrefs
    assert len([h for h in hrefs if h and h.endswith(f"/commit/{sha(1)}")]) == 2  # both charts


def test_hostile_commit_subjects_are_escaped() -> None:
    html = render_dashboard(
        step_detection(subject=HOSTILE), repo_url="https://github.com/acme/search"
    )
    assert "<script" not in html
    assert "<img" not in html
    page = _parse(html)
    assert not any(t in ("script", "img", "iframe") for t, _ in page.tags)
    assert any(HOSTILE in text for text in page.text)  # shown as text, intact


def test_a_repo_url_that_is_not_http_gives_no_links() -> None:
    html = render_dashboard(step_detection(), repo_url="javascript:alert(1)//")
    assert "javascript:" not in html
    assert not [a for t, a in _parse(html).tags if t == "a"]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    html = render_dashboard(step_detection(), repo_url="https://github.com/acme/search")
    page = _parse(html)
    for tag, attrs in page.tags:
        assert "src" not in attrs, tag
        if tag == "link":
            raise AssertionError(f"external stylesheet or icon: {attrs}")
        href = attrs.get("href")
        if href is not None:
            assert href.startswith("https://github.com/acme/search/commit/"), href
    assert not re.search(r"url\(|@import", html)


def test_chart_coordinates_follow_the_values() -> None:
    detection = step_detection()
    chart = build_chart(detection.analyses[0], None, "c")
    values = [v for v in detection.analyses[0].values if v is not None]
    ys = [p.y for p in chart.points]
    # SVG y grows downwards: the highest value has the smallest y
    assert ys.index(min(ys)) == values.index(max(values))
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)
    assert chart.markers[0].x == pytest.approx((xs[23] + xs[24]) / 2, abs=0.01)  # 24 | 25


def test_write_dashboard_writes_index_html(tmp_path: Path) -> None:
    out = tmp_path / "site"
    path = write_dashboard(out, "<!DOCTYPE html>")
    assert path == out / "index.html"
    assert path.read_text() == "<!DOCTYPE html>"
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]


def test_the_same_history_renders_the_same_bytes() -> None:
    # the data branch gets a commit only when the history changed
    first = render_dashboard(step_detection(), repo_url="https://github.com/acme/search")
    assert first == render_dashboard(step_detection(), repo_url="https://github.com/acme/search")
    assert f"Up to commit {sha(40)[:10]}" in first
