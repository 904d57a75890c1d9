"""The gate's final decision: the windows' rule, then the SLA against the base, with reasons.

==============================================  =============================================
windows (``statistical_decision``)              final ``decision``
==============================================  =============================================
fail                                            fail
any                                             fail, if an SLA row fails (the candidate
                                                breaches a limit the base keeps, or breaches
                                                a shared one clearly worse)
pass                                            pass
continue (budget or windows ran out)            inconclusive
inconclusive                                    inconclusive
==============================================  =============================================

Every reason is one line a reviewer can read; the comment shows them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ci.judge.duet import DuetJudgement, ReportMetric
from ci.judge.gate_verdict import (
    Demoted,
    Design,
    GateDecision,
    GateVerdict,
    Harness,
    Look,
    MetricLook,
    ReportRow,
    Revision,
    Rule,
    RuleMetric,
    SlaRow,
    Timings,
)
from ci.judge.sla import SlaPairCheck
from ci.settings.gate import GateConfig


@dataclass(frozen=True, slots=True)
class GateContext:
    """What the verdict records besides the judgements (revisions, harness, design)."""

    base: Revision
    candidate: Revision
    harness: Harness
    design: Design
    order_seed: int
    stopped: str  # "decided" | "last look" | "time budget"
    timings: Timings
    files: Mapping[str, str]


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _fmt_change(mode: str, x: float) -> str:
    return _pct(x) if mode == "ratio" else f"{x * 100:+.3f} pp"


def _looks(judgement: DuetJudgement, config: GateConfig) -> tuple[Look, ...]:
    specs = {m.name: m for m in config.metrics}
    medians = {r.name: r for r in judgement.primary_report}
    out = []
    for look in judgement.looks:
        rows = []
        for m in look.metrics:
            spec = specs[m.name]
            report = medians[m.name]
            rows.append(
                MetricLook(
                    name=m.name,
                    direction=spec.direction,
                    mode=spec.mode,
                    fail_threshold=spec.fail_threshold,
                    pairs=m.pairs,
                    estimate=m.estimate,
                    change=m.change,
                    p_worse=m.p_worse,
                    p_within=m.p_within,
                    rejected=m.rejected,
                    failed=m.failed,
                    within=m.within,
                    base_median=report.base_median,
                    candidate_median=report.candidate_median,
                )
            )
        out.append(Look(look.look, look.pairs, look.decision, look.level, tuple(rows)))
    return tuple(out)


def _window_reasons(judgement: DuetJudgement, config: GateConfig, stopped: str) -> list[str]:
    if not judgement.looks:
        return [
            f"no look reached: {judgement.windows} measured windows, the first look needs "
            f"{config.looks[0]} ({stopped})"
        ]
    last = judgement.looks[-1]
    specs = {m.name: m for m in config.metrics}
    reasons = []
    if last.decision == "fail":
        for m in last.metrics:
            if m.failed:
                spec = specs[m.name]
                reasons.append(
                    f"{m.name} {_fmt_change(spec.mode, m.change)} over {m.pairs} windows, beyond "
                    f"its {_fmt_change(spec.mode, spec.fail_threshold)} fail threshold "
                    f"(p = {m.p_worse:.2g} <= {last.level / len(last.metrics):.2g}, Holm)"
                )
    elif last.decision == "pass":
        names = ", ".join(m.name for m in last.metrics)
        reasons.append(
            f"every primary metric ({names}) within its threshold after {last.pairs} windows"
        )
    else:
        unclear = [m.name for m in last.metrics if not m.within]
        why = "windows ran out" if stopped == "last look" else "the time budget ran out"
        reasons.append(
            f"after {last.pairs} windows ({why}) {', '.join(unclear)} could be shown neither "
            "within its threshold nor worse"
        )
    return reasons


def _sla_rows(checks: Sequence[SlaPairCheck]) -> tuple[SlaRow, ...]:
    return tuple(
        SlaRow(
            scenario=c.scenario,
            metric=c.name,
            limit=c.limit,
            comparator=c.comparator,
            base=c.base,
            candidate=c.candidate,
            status=c.status,
            message=c.message,
        )
        for c in checks
    )


def _report_rows(metrics: Sequence[ReportMetric], scenario: str) -> tuple[ReportRow, ...]:
    return tuple(
        ReportRow(
            scenario=scenario,
            metric=m.name,
            mode=m.mode,
            base=m.base_median,
            candidate=m.candidate_median,
            change=m.change,
            ci_low=m.ci_low,
            ci_high=m.ci_high,
            p_two_sided=m.p_two_sided,
            changed=m.changed,
            note=m.note,
        )
        for m in metrics
    )


def gate_verdict(
    judgement: DuetJudgement,
    sla: Sequence[SlaPairCheck],
    config: GateConfig,
    context: GateContext,
) -> GateVerdict:
    """The verdict file's content (see the module docstring for the decision table)."""
    stats = judgement.decision
    reasons = _window_reasons(judgement, config, context.stopped)
    sla_failures = [c for c in sla if c.status == "fail"]
    for c in sla_failures:
        reasons.append(c.message or f"SLA {c.scenario}/{c.name} fails")
    decision: GateDecision
    if stats == "fail" or sla_failures:
        decision = "fail"
    elif stats == "pass":
        decision = "pass"
    else:
        decision = "inconclusive"
    if decision == "pass":
        shared = [c for c in sla if c.status == "pre-existing"]
        if shared:
            reasons.append(
                f"{len(shared)} SLA breach(es) shared with the base: pre-existing, not blocking"
            )
    if context.harness.changed:
        reasons.append(
            "this pull request changes the harness ("
            + ", ".join(context.harness.paths[:5])
            + (", ..." if len(context.harness.paths) > 5 else "")
            + "): the base's harness measured both sides"
        )
    return GateVerdict(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        decision=decision,
        statistical_decision=stats,  # type: ignore[arg-type]  # a LookDecision by construction
        reasons=tuple(reasons),
        base=context.base,
        candidate=context.candidate,
        harness=context.harness,
        rule=Rule(
            alpha=config.alpha,
            pass_alpha=config.pass_alpha,
            looks=config.looks,
            min_tail_samples=config.min_tail_samples,
            report_threshold=config.report_threshold,
            report_alpha=config.report_alpha,
            order_seed=context.order_seed,
            bootstrap_seed=None,
            metrics=tuple(
                RuleMetric(m.name, m.direction, m.mode, m.fail_threshold) for m in config.metrics
            ),
        ),
        design=context.design,
        pairs=judgement.windows,
        looks=_looks(judgement, config),
        demoted=tuple(Demoted(d.name, d.reason) for d in judgement.demoted),
        report_only=_report_rows(judgement.report_only, "duet"),
        sla=_sla_rows(sla),
        timings=context.timings,
        files=dict(context.files),
    )
