"""The history's change points as terminal text; the regression issues and the job
summary as Markdown.

Issue bodies quote commit subjects, which anyone who can push to main wrote: they pass
through :func:`ci.render.escape.md` (no HTML, no links, no mentions). Titles hold only our
own names (metric labels; series names are restricted to ``[A-Za-z0-9._-]``) and short SHAs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ci.history.detect import ChangePoint, Detection
from ci.history.tracking import Tracked, marker
from ci.render.dashboard import commit_url
from ci.render.escape import md, md_link, safe_url
from ci.render.formatting import LABELS

MAX_TITLE = 256


def _change(cp: ChangePoint) -> str:
    if cp.change_percent is None:
        return "from 0"
    return f"{cp.change_percent:+.1f} %"


def change_point_lines(detection: Detection) -> str:
    """One line per change point, oldest first within a series; a closing summary line."""
    lines = []
    for cp in detection.change_points:
        status = cp.kind.upper()
        if cp.kind == "regression" and cp.reverted_by:
            status += f" (reverted by {cp.reverted_by[:12]})"
        lines.append(
            f"{cp.key.name}  {cp.metric}  at {cp.commit[:12]} (row {cp.index + 1}): "
            f"{cp.mean_before:.4g} -> {cp.mean_after:.4g} ({_change(cp)}), "
            f"p = {cp.pvalue:.2g}  {status}"
        )
    series = {a.key for a in detection.analyses}
    regressions = len(detection.open_regressions)
    lines.append(
        f"{len(detection.change_points)} change point(s) in {len(detection.analyses)} metric "
        f"series of {len(series)} scenario series; {regressions} open regression(s)"
    )
    return "\n".join(lines)


def issue_title(t: Tracked) -> str:
    metric = LABELS.get(t.metric, t.metric)
    first = t.regressions[0] if t.regressions else None
    where = f"{t.key.scenario} ({t.key.profile}, {t.key.machine_class})"
    text = f"Performance regression: {metric} of {where}"
    if first is not None:
        text += f", {_change(first)} at {first.commit[:10]}"
    return text[:MAX_TITLE]


def _cp_rows(t: Tracked, repo_url: str | None) -> list[str]:
    subjects = {r.commit: r.subject for r in t.analysis.series.rows}
    rows = [
        "| commit | subject | before | after | change | p |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for cp in t.regressions:
        link = md_link(cp.commit[:10], commit_url(repo_url, cp.commit))
        rows.append(
            f"| {link} | {md(subjects.get(cp.commit, ''), 120)} | {cp.mean_before:.4g} | "
            f"{cp.mean_after:.4g} | {_change(cp)} | {cp.pvalue:.2g} |"
        )
    return rows


def issue_body(
    t: Tracked,
    *,
    repo_url: str | None = None,
    dashboard_url: str | None = None,
    run_url: str | None = None,
) -> str:
    """The body of an open regression issue; the marker comes first."""
    metric = LABELS.get(t.metric, t.metric)
    direction = "lower" if t.analysis.spec.direction == "lower" else "higher"
    threshold = (
        f"{t.analysis.threshold * 100:.1f} %"
        if t.analysis.spec.mode == "ratio"
        else f"{t.analysis.threshold:g} (absolute)"
    )
    lines = [
        marker(t.id),
        f"Apache Otava found a lasting change of **{md(metric)}** in the history of main "
        f"(scenario `{t.key.scenario}`, profile `{t.key.profile}`, machine class "
        f"`{t.key.machine_class}`; {direction} is better). It is worse than the "
        f"regression threshold of {threshold}:",
        "",
        *_cp_rows(t, repo_url),
        "",
    ]
    links = []
    if (url := safe_url(dashboard_url)) is not None:
        links.append(f"[the dashboard]({url})")
    if (url := safe_url(run_url)) is not None:
        links.append(f"[the workflow run]({url})")
    if links:
        lines += [f"See {' and '.join(links)}.", ""]
    lines.append(
        "`perfci history issues` keeps this issue up to date after every push to main and "
        "closes it when a later change point brings the level back."
    )
    return "\n".join(lines) + "\n"


def close_comment(t: Tracked, *, repo_url: str | None = None, run_url: str | None = None) -> str:
    if t.reverted_by is not None:
        link = md_link(t.reverted_by[:10], commit_url(repo_url, t.reverted_by))
        text = f"Reverted: after commit {link} the level is back within the threshold. Closing."
    else:
        text = "This regression is no longer detected as a change point in the history. Closing."
    if (url := safe_url(run_url)) is not None:
        text += f" ([workflow run]({url}))"
    return text + "\n"


class TouchedIssue(Protocol):
    """What became of one tracked metric's issue (``ci.post.issues.IssueOutcome``)."""

    @property
    def tracking(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def url(self) -> str: ...


def job_summary(
    detection: Detection,
    tracked: Sequence[Tracked],
    touched: Sequence[TouchedIssue],
    *,
    repo_url: str | None = None,
    dashboard_url: str | None = None,
    run_url: str | None = None,
) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the change points, the regression issues this
    run opened, updated, closed or left as they were, and the links."""
    cps = detection.change_points
    lines = [
        "## Performance history of main",
        "",
        f"{len(cps)} change point(s) in {len(detection.analyses)} metric series; "
        f"{len(detection.open_regressions)} open regression(s).",
        "",
    ]
    if cps:
        lines += [
            "| series | metric | commit | before | after | change | p | kind |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for cp in cps:
            kind: str = cp.kind
            if cp.reverted_by:
                revert = md_link(cp.reverted_by[:10], commit_url(repo_url, cp.reverted_by))
                kind += f" (reverted by {revert})"
            lines.append(
                f"| `{cp.key.name}` | {md(LABELS.get(cp.metric, cp.metric))} | "
                f"{md_link(cp.commit[:10], commit_url(repo_url, cp.commit))} | "
                f"{cp.mean_before:.4g} | {cp.mean_after:.4g} | {_change(cp)} | "
                f"{cp.pvalue:.2g} | {kind} |"
            )
        lines.append("")
    titles = {t.id: issue_title(t) for t in tracked}
    lines += ["### Regression issues", ""]
    if touched:
        lines += ["| issue | what | action |", "|---|---|---|"]
        for o in touched:
            title = md(titles.get(o.tracking, o.tracking))
            lines.append(f"| {md_link(f'#{o.number}', o.url)} | {title} | {md(o.action)} |")
    else:
        lines.append("No regression issue is open, and none was opened or closed.")
    lines.append("")
    links = []
    if (url := safe_url(dashboard_url)) is not None:
        links.append(f"[the dashboard]({url})")
    if (url := safe_url(run_url)) is not None:
        links.append(f"[this workflow run]({url})")
    if links:
        lines.append(f"See {' and '.join(links)}.")
    return "\n".join(lines).rstrip("\n") + "\n"
