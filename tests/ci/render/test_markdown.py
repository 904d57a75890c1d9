from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path

import msgspec
import pytest

import ci.render.environment
from ci.errors import RenderError
from ci.judge.compare import Comparison
from ci.judge.verdict import Judgement, judge_runs, judgement
from ci.render.environment import RenderContext
from ci.render.markdown import MARKER, render_comment, render_summary
from ci.results import RunResults, load_results
from ci.settings import PerfConfig

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
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
def judged(runs: tuple[list[RunResults], list[RunResults]]) -> Judgement:
    return judge_runs(runs[0], runs[1], PerfConfig(), seed=42)


@pytest.fixture(scope="module")
def comparison(judged: Judgement) -> Comparison:
    return judged.comparison


def test_comment_matches_golden_file(judged: Judgement) -> None:
    body = render_comment(judged, CONTEXT)
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
    body = render_comment(judgement(comparison, []), RenderContext())
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert lines[1].startswith("**Performance: FAIL** \u2014 6 regressions")
    summary = render_summary(judgement(comparison, []), RenderContext())
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
        msgspec.structs.replace(r, git_ref=text, profile=text, git_commit=text)
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
    body = render_comment(judgement(hostile, []), context)
    _assert_inert_markdown(body)


def test_unescaped_string_in_markdown_template_is_refused(comparison: Comparison) -> None:
    env = ci.render.environment._environment(True)
    template = env.from_string("{{ raw }}")
    with pytest.raises(RenderError, match="unescaped text reached a Markdown template"):
        template.render(raw="<b>")
    assert env.from_string("{{ raw|md }}").render(raw="<b>") == "&lt;b&gt;"


def test_comment_order_primary_then_clear_changes_then_everything_else(judged: Judgement) -> None:
    body = render_comment(judged, CONTEXT, primary=("latency_p95",))
    order = [
        "**Performance: FAIL**",
        "### Primary metrics",
        "| search · latency p95 | 103.2 ms | 112.7 ms |",
        "### Changed clearly",
        "| search · latency p50 |",
        "Links: [artifacts]",
        "<details>",
        "### Scenario search",
        "### SLA",
        "### Run details",
        "</details>",
    ]
    positions = [body.index(part) for part in order]
    assert positions == sorted(positions)
    visible = body[: body.index("<details>")]
    assert "peak RSS" not in visible  # unchanged: collapsed
    assert "cache hit ratio" not in visible
    assert "| search · latency p95 |" not in visible[visible.index("### Changed clearly") :]


def test_sla_failures_are_shown_before_the_details(
    runs: tuple[list[RunResults], list[RunResults]],
) -> None:
    from ci.judge.sla import check_sla

    strict = PerfConfig().sla
    strict = dataclasses.replace(strict, p95_ms=50.0)
    judged = judgement(
        judge_runs(runs[0], runs[1], PerfConfig(), seed=42).comparison,
        check_sla(runs[1], strict),
    )
    body = render_comment(judged, CONTEXT)
    visible = body[: body.index("<details>")]
    assert "### SLA failures" in visible
    assert "| search | latency p95 | 112.7 ms | &lt; 50.0 ms | 6 | **FAIL** |" in visible
