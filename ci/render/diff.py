"""``perfci diff`` as GitHub Markdown: a run against the stored baseline, with no verdict."""

from __future__ import annotations

import math

from ci.judge.diff import MetricDiff, RunDiff
from ci.render.escape import md
from ci.render.formatting import FRACTIONS, metric_label, value
from ci.results import RunMeta

NO_VERDICT = (
    "One run per side cannot decide: each change below includes the run-to-run noise, and "
    "none is a verdict. The PR gate (`perfci gate`, `nox -s pr`) decides."
)


def _run(meta: RunMeta) -> str:
    commit = (meta.git_commit or "no commit")[:12]
    return f"{md(meta.id)} (commit {md(commit)}, {md(meta.created_at[:10])})"


def _change(row: MetricDiff) -> str:
    if row.metric in FRACTIONS:  # a share whose base is often 0: percentage points
        diff = row.difference
        return "n/a" if diff is None else f"{diff * 100:+.3f} pp"
    change = row.change
    if change is None or not math.isfinite(change):
        return "n/a"
    return f"{change * 100:+.1f} %"


def render_diff(diff: RunDiff) -> str:
    lines = [
        f"## Against the baseline (profile {md(diff.candidate.profile)})",
        "",
        f"Baseline {_run(diff.base)}; this run {_run(diff.candidate)}.",
        "",
        NO_VERDICT,
        "",
        "| scenario | metric | baseline | this run | change |",
        "|---|---|---:|---:|---:|",
    ]
    for row in diff.rows:
        lines.append(
            f"| {md(row.scenario)} | {metric_label(row.metric)} "
            f"| {value(row.metric, row.base)} | {value(row.metric, row.candidate)} "
            f"| {_change(row)} |"
        )
    if diff.unmatched:
        names = ", ".join(md(n) for n in diff.unmatched)
        lines += ["", f"Scenarios only one of the runs has (not compared): {names}."]
    return "\n".join(lines) + "\n"
