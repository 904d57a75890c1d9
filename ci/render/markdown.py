"""The pull-request comment and the job summary, as GitHub Markdown. No statistics here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ci.judge.verdict import Judgement
from ci.render.environment import RenderContext, comparison_values, render_template
from ci.settings.gate import DEFAULT_GATE_METRICS

MARKER = "<!-- perfci:comment -->"
#: Metric statuses the judge gives only to a statistically clear change (shown outside
#: the collapsed section of the comment); "error" too, so that it is never hidden.
CLEAR_STATUSES = frozenset({"fail", "warn", "improved", "error"})


def _values(
    judgement: Judgement, context: RenderContext, primary: Sequence[str] | None
) -> dict[str, Any]:
    names = tuple(primary) if primary is not None else tuple(m.name for m in DEFAULT_GATE_METRICS)
    clear = [
        (s, m)
        for s in judgement.comparison.scenarios
        for m in s.metrics
        if m.metric not in names and m.status in CLEAR_STATUSES
    ]
    return {
        **comparison_values(judgement, context),
        "primary": names,
        "clear": clear,
        "sla_failures": [c for c in judgement.sla if c.status == "fail"],
    }


def render_summary(
    judgement: Judgement, context: RenderContext, primary: Sequence[str] | None = None
) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the verdict, the ``primary`` metrics (perf.toml
    ``[gate]`` metrics; the defaults when not given), the other metrics the judge found
    clearly changed, the links; everything else collapsed."""
    return render_template("summary.md.j2", **_values(judgement, context, primary))


def render_comment(
    judgement: Judgement, context: RenderContext, primary: Sequence[str] | None = None
) -> str:
    """The pull-request comment: the hidden marker line first, then the summary."""
    body = render_template("comment.md.j2", **_values(judgement, context, primary))
    assert body.startswith(MARKER + "\n"), "comment template must start with the marker"
    return body
