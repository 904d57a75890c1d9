from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path

import pytest

from ci.compare import Comparison, check_sla, compare_runs
from ci.config import PerfConfig
from ci.errors import RenderError
from ci.escape import md, md_link, safe_url
from ci.render import (
    MARKER,
    RenderContext,
    render_comment,
    render_html_report,
    render_run_report,
    render_summary,
)
from ci.results import RunResults, load_results

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
GOLDEN = RESOURCES / "golden" / "comment.md"
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
def comparison(runs: tuple[list[RunResults], list[RunResults]]) -> Comparison:
    return compare_runs(runs[0], runs[1], PerfConfig().compare, seed=42)


def test_comment_matches_golden_file(
    runs: tuple[list[RunResults], list[RunResults]], comparison: Comparison
) -> None:
    body = render_comment(comparison, check_sla(runs[1], PerfConfig().sla), CONTEXT)
    if os.environ.get("PERFCI_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(body, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8")
    if body != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                body.splitlines(keepends=True),
                "golden/comment.md",
                "rendered",
            )
        )
        pytest.fail(f"rendered comment differs from the golden file:\n{diff}")


def test_comment_starts_with_marker_and_verdict(comparison: Comparison) -> None:
    body = render_comment(comparison, [], RenderContext())
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("**Performance: FAIL** \u2014 6 regressions")
    summary = render_summary(comparison, [], RenderContext())
    assert MARKER not in summary
    assert summary.startswith("**Performance: FAIL**")


def _hostile_comparison(comparison: Comparison, text: str) -> Comparison:
    scenarios = tuple(
        dataclasses.replace(
            s,
            name=text,
            metrics=tuple(dataclasses.replace(m, scenario=text, message=text) for m in s.metrics),
        )
        for s in comparison.scenarios
    )
    runs = tuple(
        dataclasses.replace(r, git_ref=text, profile=text, git_commit=text)
        for r in comparison.candidate_runs
    )
    return dataclasses.replace(comparison, scenarios=scenarios, candidate_runs=runs)


def _assert_inert_markdown(body: str) -> None:
    assert "<img" not in body
    assert "</details><" not in body
    assert body.count("</details>") == 1
    assert "](javascript" not in body
    assert "@org" not in body  # the mention is broken by a zero-width space
    assert "![" not in body
    assert "\u202e" not in body
    for line in body.splitlines():
        assert len(line) < 2000, "long untrusted text must be truncated"
        if line.startswith("|"):
            # Every unescaped pipe is a cell border: rows keep their column count.
            cells = re.split(r"(?<!\\)\|", line)
            assert len(cells) in (5, 8, 9), line
        assert not line.startswith("## heading")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_inert_in_markdown(comparison: Comparison, text: str) -> None:
    hostile = _hostile_comparison(comparison, text)
    context = RenderContext(
        repository=text, pr_title=text, pr_number=1, base_ref=text, head_ref=text
    )
    body = render_comment(hostile, [], context)
    _assert_inert_markdown(body)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_in_html(
    runs: tuple[list[RunResults], list[RunResults]], text: str
) -> None:
    run = runs[0][0]
    evil = dataclasses.replace(
        run,
        run=dataclasses.replace(run.run, id=text, settings={text: text}),
        scenarios=(dataclasses.replace(run.scenarios[0], name=text, timeseries=()),),
    )
    html = render_run_report(evil)
    assert "<img src=x" not in html
    if "<" in text:
        assert "&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_md_escaping_rules() -> None:
    assert md("a|b") == "a\\|b"
    assert md("<b>&") == "&lt;b&gt;&amp;"
    assert md("@org/team") == "@\u200borg/team"
    assert md("line1\nline2\r\n\tline3") == "line1 line2 line3"
    assert md("`x`") == "\\`x\\`"
    assert md("[a](b)") == "\\[a\\]\\(b\\)"
    assert md(None) == ""
    long = md("y" * 10_000)
    assert len(long) == 200
    assert long.endswith("\u2026")


def test_links_only_for_http_urls() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("/relative") is None
    assert safe_url("https://x.example/a b(c)") == "https://x.example/a%20b%28c%29"
    assert md_link("report", "data:text/html,x") == "report"
    assert md_link("report", "https://x.example/r") == "[report](https://x.example/r)"


def test_unescaped_string_in_markdown_template_is_refused(comparison: Comparison) -> None:
    from ci import render

    env = render._environment(True)
    template = env.from_string("{{ raw }}")
    with pytest.raises(RenderError, match="unescaped text reached a Markdown template"):
        template.render(raw="<b>")
    assert env.from_string("{{ raw|md }}").render(raw="<b>") == "&lt;b&gt;"


def test_html_comparison_report_embeds_every_plot(
    runs: tuple[list[RunResults], list[RunResults]], comparison: Comparison
) -> None:
    base, cand = runs
    one = [dataclasses.replace(r, scenarios=r.scenarios[:1]) for r in base]
    two = [dataclasses.replace(r, scenarios=r.scenarios[:1]) for r in cand]
    comp = dataclasses.replace(comparison, scenarios=comparison.scenarios[:1])
    html = render_html_report(comp, check_sla(two, PerfConfig().sla), CONTEXT, one, two)
    assert html.startswith("<!DOCTYPE html>")
    # distributions, latency, throughput and RSS for the one scenario
    assert html.count('<img src="data:image/png;base64,') == 4
    for caption in (
        "per-run figures",
        "latency over time",
        "throughput over time",
        "RSS over time",
    ):
        assert f"search: {caption}" in html
    assert "<script" not in html
    assert 'href="https://github.com/acme/search/actions/runs/1/artifacts/2"' in html


def test_run_report(runs: tuple[list[RunResults], list[RunResults]]) -> None:
    run = runs[0][0]
    one = dataclasses.replace(run, scenarios=run.scenarios[:1])
    html = render_run_report(one)
    assert "Performance run base-1" in html
    assert html.count('<img src="data:image/png;base64,') == 3
    assert "cache_enabled" in html
