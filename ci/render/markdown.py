"""The pull-request comment and the job summary, as GitHub Markdown. No statistics here."""

from __future__ import annotations

from ci.judge.verdict import Judgement
from ci.render.environment import RenderContext, comparison_values, render_template

MARKER = "<!-- perfci:comment -->"


def render_summary(judgement: Judgement, context: RenderContext) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    return render_template("summary.md.j2", **comparison_values(judgement, context))


def render_comment(judgement: Judgement, context: RenderContext) -> str:
    """The pull-request comment: the hidden marker line first, then the summary."""
    body = render_template("comment.md.j2", **comparison_values(judgement, context))
    assert body.startswith(MARKER + "\n"), "comment template must start with the marker"
    return body
