"""The gate's one decision: :func:`judge` (windows and rule in, judgement and conclusion out).

``perfci gate`` calls it on the windows it measured, ``perfci gate --rejudge`` and
``perfci comment`` call it again on a report folder's ``windows.json`` with the rule stored
in its ``verdict.json`` (:func:`rejudge`); ``ci/post`` only posts what it returns.

==============================================  ====================  ============
windows (``statistical_decision``), SLA         ``decision``          conclusion
==============================================  ====================  ============
fail                                            fail                  failure
any, and the candidate failed (its venv,        fail                  failure
loader or service broke, it died during the
windows, errors stopped the shape scenarios)
any, and an SLA row fails (the candidate        fail                  failure
breaches a limit the base keeps, or breaches
a shared one clearly worse)
any, and the recall check fails                 fail                  failure
(``ci.judge.quality``)
any, and a micro-benchmark case fails           fail                  failure
(``ci.judge.micro``)
pass                                            pass                  success
pass, and the pull request changes the harness  pass                  ``harness_changed``
continue (budget or windows ran out)            inconclusive          ``inconclusive``
inconclusive                                    inconclusive          ``inconclusive``
==============================================  ====================  ============

``inconclusive`` and ``harness_changed`` are the rule's policies (``perf.toml [gate]``,
"neutral" or "failure"): a team that makes the check required chooses whether "don't know"
blocks a merge. A pass of a pull request that changes the harness is not a plain success:
the base's harness measured it, so the pull request's own harness was never tried. When a
policy sets the conclusion, the last reason says which one. Every reason is one line a reviewer
can read; the comment shows them as they are. The recall check's reasons come first (after
what broke in the candidate), then the micro-benchmarks', then the windows'.

False FAILs per pull request, for identical code: the windows' rule at most ``alpha``
(Holm per look, Bonferroni over the looks, :mod:`ci.judge.gate`); the two recall tests
together at most ``alpha * QUALITY_ALPHA_SHARE`` (:mod:`ci.judge.quality`); the
micro-benchmarks at most ``alpha * MICRO_ALPHA_SHARE`` (:mod:`ci.judge.micro`). The
shares are 0.25 each, so a pull request's false-FAIL rate is at most ``1.5 * alpha``
(0.015 at ``alpha = 0.01``), less in practice since each check's threshold must be met
too. The SLA rows are absolute limits with a margin, not tests, and are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ci.errors import ComparisonError
from ci.judge.duet import DuetJudgement, judge_duet
from ci.judge.gate_verdict import (
    Conclusion,
    DependencyChange,
    GateDecision,
    GateJudgement,
    GateVerdict,
    Harness,
    SlaRow,
    Stopped,
)
from ci.judge.micro import judge_micro
from ci.judge.quality import faster, judge_quality
from ci.judge.sla import SlaPairCheck
from ci.results.duet import DuetRun
from ci.results.micro import MicroRun
from ci.results.quality import QualityRun
from ci.settings.gate import GateMetric, GateRule

#: Absolute metrics that are shares of requests: their changes read in percentage points.
SHARES = frozenset({"error_rate", "slow_share", "slow_lead"})


def _fmt_change(metric: GateMetric, x: float) -> str:
    if metric.mode == "ratio":
        return f"{x * 100:+.1f} %"
    if metric.name in SHARES:
        return f"{x * 100:+.3f} pp"
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.4g}"


def _window_reasons(judged: DuetJudgement, rule: GateRule, stopped: Stopped) -> list[str]:
    if not judged.looks:
        return [
            f"no look reached: {judged.windows} measured windows, the first look needs "
            f"{rule.looks[0]} ({stopped})"
        ]
    last = judged.looks[-1]
    specs = {m.name: m for m in rule.metrics}
    reasons = []
    if last.decision == "fail":
        for m in last.metrics:
            if m.failed:
                spec = specs[m.name]
                reasons.append(
                    f"{m.name} {_fmt_change(spec, m.change)} over {m.pairs} windows, beyond "
                    f"its {_fmt_change(spec, spec.fail_threshold)} fail threshold "
                    f"(p = {m.p_worse:.2g} <= {last.level / len(last.metrics):.2g}, Holm)"
                )
    elif last.decision == "pass":
        names = ", ".join(m.name for m in last.metrics)
        reasons.append(
            f"every primary metric ({names}) within its threshold after {last.pairs} windows"
        )
    else:
        unclear = [m.name for m in last.metrics if not m.within]
        why = {
            "last look": "windows ran out",
            "time budget": "the time budget ran out",
            "candidate failed": "the candidate failed",
        }.get(stopped, stopped)
        reasons.append(
            f"after {last.pairs} windows ({why}) {', '.join(unclear)} could be shown neither "
            "within its threshold nor worse"
        )
    return reasons


def _dependency_reason(changes: Sequence[DependencyChange]) -> str:
    shown = [f"{c.name} {c.base or '(none)'} -> {c.candidate or '(none)'}" for c in changes[:10]]
    more = f", and {len(changes) - 10} more" if len(changes) > 10 else ""
    return "resolved dependency versions differ between the sides: " + ", ".join(shown) + more


def sla_rows(checks: Sequence[SlaPairCheck]) -> tuple[SlaRow, ...]:
    """The SLA checks against the base as the verdict stores them."""
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


def judge(
    windows: DuetRun,
    rule: GateRule,
    *,
    sla: Sequence[SlaRow] = (),
    harness: Harness | None = None,
    stopped: Stopped = "last look",
    failure: str | None = None,
    dependencies: Sequence[DependencyChange] = (),
    quality: QualityRun | None = None,
    micro: MicroRun | None = None,
) -> GateJudgement:
    """The judgement of ``windows`` under ``rule`` (see the module docstring for the table).

    ``sla``: the shape scenarios' rows against the base; ``harness``: which harness drove
    both sides and whether the pull request changed it; ``stopped``: why the measuring
    ended (it words the reasons of an undecided verdict); ``failure``: what broke in the
    candidate, if anything (the verdict is then a fail, whatever windows were measured);
    ``dependencies``: the packages whose resolved versions differ between the sides (one
    reason names them); ``quality``: the recall check as measured, ``micro``: the
    micro-benchmarks as measured (None: not measured).
    """
    try:
        judged = judge_duet(windows, rule)
    except ComparisonError:
        if failure is None:
            raise
        judged = DuetJudgement((), (), (), (), (), len(windows.measured))  # unjudgeable windows
    stats = judged.decision
    reasons = [f"the candidate failed: {failure}"] if failure is not None else []
    if failure is None or judged.looks:
        reasons += _window_reasons(judged, rule, stopped)
    sla_failures = [c for c in sla if c.status == "fail"]
    for c in sla_failures:
        reasons.append(c.message or f"SLA {c.scenario}/{c.metric} fails")
    # the checks' reasons after what broke, else first: the headline
    at = 1 if failure is not None else 0
    checks_failed = False
    if quality is not None:
        speed = faster((*judged.primary_report, *judged.report_only))
        check = judge_quality(quality, rule, speed)
        checks_failed |= check.status == "fail"
        reasons[at:at] = check.reasons
        at += len(check.reasons)
    if micro is not None:
        micro_check = judge_micro(micro, rule)
        checks_failed |= micro_check.status == "fail"
        reasons[at:at] = micro_check.reasons
    decision: GateDecision
    if stats == "fail" or sla_failures or failure is not None or checks_failed:
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
    if dependencies:
        reasons.append(_dependency_reason(dependencies))
    changed = harness is not None and harness.changed
    if harness is not None and changed:
        reasons.append(
            "this pull request changes the harness ("
            + ", ".join(harness.paths[:5])
            + (", ..." if len(harness.paths) > 5 else "")
            + "): the base's harness measured both sides"
        )
    conclusion: Conclusion
    if decision == "fail":
        conclusion = "failure"
    elif decision == "pass" and not changed:
        conclusion = "success"
    elif decision == "pass":
        conclusion = rule.harness_changed
        reasons.append(
            f"policy gate.harness_changed = {rule.harness_changed!r}: a pass of a harness "
            f"change ends the check as {conclusion}"
        )
    else:
        conclusion = rule.inconclusive
        reasons.append(
            f"policy gate.inconclusive = {rule.inconclusive!r}: an undecided verdict ends the "
            f"check as {conclusion}"
        )
    return GateJudgement(
        decision=decision,
        conclusion=conclusion,
        statistical_decision=stats,
        reasons=tuple(reasons),
        pairs=judged.windows,
        looks=judged.looks,
        primary=judged.primary_report,
        demoted=judged.demoted,
        report_only=judged.report_only,
    )


def rejudge(verdict: GateVerdict, windows: DuetRun) -> GateJudgement:
    """Judge a verdict's windows again under the rule and facts its file records (the
    recall check's and the micro-benchmarks' figures included)."""
    return judge(
        windows,
        verdict.rule,
        sla=verdict.sla,
        harness=verdict.harness,
        stopped=verdict.stopped,
        failure=verdict.failure,
        dependencies=verdict.dependencies,
        quality=verdict.quality,
        micro=verdict.micro,
    )
