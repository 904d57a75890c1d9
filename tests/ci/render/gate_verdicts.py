"""A gate verdict as ``perfci gate`` writes it, with chosen figures, for the render tests."""

from __future__ import annotations

import msgspec

from ci.judge.duet import Demotion, ReportMetric
from ci.judge.gate import LookResult, MetricJudgement
from ci.judge.gate_verdict import (
    GateJudgement,
    GateVerdict,
    Harness,
    LookDecision,
    Revision,
    Servers,
    ServerSource,
    SideServers,
    SlaRow,
    Timings,
)
from ci.results.micro import MicroRound, MicroRun
from ci.settings.gate import GateDesign, GateMetric, GateRule

BASE_SHA, MERGE_SHA = "b" * 40, "c" * 40
RULE = GateRule(
    metrics=(
        GateMetric("cpu_ms_per_request", "lower", 0.05),
        GateMetric("latency_p95", "lower", 0.10),
        GateMetric("error_rate", "lower", 0.001, "absolute"),
    )
)
_JUDGEMENT_FIELDS = set(GateJudgement.__struct_fields__)


def _metric(name: str, change: float, failed: bool = False) -> MetricJudgement:
    return MetricJudgement(
        name=name,
        pairs=24,
        estimate=change,
        change=change,
        p_worse=0.0004 if failed else 0.4,
        p_within=0.9 if failed else 0.001,
        rejected=failed,
        failed=failed,
        within=not failed,
    )


def _medians(name: str, mode: str, change: float, base: float) -> ReportMetric:
    return ReportMetric(
        name=name,
        pairs=24,
        mode=mode,
        change=change,
        ci_low=change - 0.01,
        ci_high=change + 0.01,
        p_two_sided=0.5,
        changed=False,
        base_median=base,
        candidate_median=base * (1 + change) if mode == "ratio" else base + change,
    )


def side_servers(
    postgres: str = "18.6",
    pgvector: str | None = "0.8.6",
    package: str | None = "18.6.3",
    valkey: str = "9.1.2",
    source: ServerSource = "side's venv",
) -> SideServers:
    return SideServers(
        postgres=postgres,
        pgvector=pgvector,
        postgres_package=package,
        postgres_from=source,
        valkey=valkey,
        valkey_from=source,
    )


def _hostile_micro(text: str) -> MicroRun:
    """Micro-benchmarks whose case name is ``text`` (a verdict file is untrusted)."""
    figures = (1e-6, 2e-6)
    rounds = tuple(
        MicroRound(first="base", base=figures, candidate=(3e-6, None)) for _ in range(12)
    )
    return MicroRun(cases=(text, text + "!"), rounds=rounds)


def verdict(
    decision: LookDecision = "fail", text: str | None = None, **changes: object
) -> GateVerdict:
    """A verdict; ``text`` replaces every free-text field; ``changes`` replace fields of the
    verdict or of its judgement."""
    metrics = (
        _metric("cpu_ms_per_request", 0.012),
        _metric("latency_p95", 0.123, failed=decision == "fail"),
        _metric("error_rate", 0.0),
    )
    t = text or ""
    conclusion = {"pass": "success", "fail": "failure"}.get(decision, "neutral")
    judgement: dict[str, object] = {
        "decision": decision,
        "conclusion": conclusion,
        "statistical_decision": decision,
        "reasons": (
            text or "latency_p95 +12.3 % over 24 windows, beyond its +10.0 % fail threshold",
        ),
        "pairs": 24,
        "looks": (
            LookResult(0, 12, "continue", 0.0033, metrics),
            LookResult(1, 24, decision, 0.0033, metrics),
        ),
        "primary": (
            _medians("cpu_ms_per_request", "ratio", 0.012, 7.0),
            _medians("latency_p95", "ratio", 0.123, 20.0),
            _medians("error_rate", "absolute", 0.0, 0.0),
        ),
        "demoted": (Demotion("latency_p99", text or "report-only: 40 samples above p99"),),
        "report_only": (
            ReportMetric(
                name="latency_p90",
                pairs=24,
                mode="ratio",
                change=0.11,
                ci_low=0.07,
                ci_high=0.15,
                p_two_sided=0.0001,
                changed=True,
                base_median=12.0,
                candidate_median=13.5,
                note=text,
            ),
            ReportMetric(
                name="latency_p50",
                pairs=24,
                mode="ratio",
                change=0.005,
                ci_low=-0.01,
                ci_high=0.02,
                p_two_sided=0.7,
                changed=False,
                base_median=4.0,
                candidate_median=4.02,
            ),
        ),
    }
    values: dict[str, object] = {
        "created_at": "2026-12-01T10:00:00+00:00",
        "rule": RULE,
        "design": GateDesign(rate=75, shapes=("ramp", "sse")),
        "machine_class": text or "2cpu-24gb-x86_64",
        "order_seed": 7,
        "stopped": "decided",
        "base": Revision(text or "HEAD^1", BASE_SHA),
        "candidate": Revision(text or "HEAD", MERGE_SHA),
        "harness": Harness(
            revision="b" * 40,
            source=text or "base revision",
            changed=text is not None,
            paths=(t,) if text else (),
        ),
        "sla": (
            SlaRow(
                scenario=text or "sse",
                metric="error_rate",
                limit=0.001,
                comparator="<",
                base=0.0386,
                candidate=0.039,
                status="pre-existing",
                message=text or "both sides breach it",
            ),
        ),
        "timings": Timings(total_s=540, setup_s=60, windows_s=400, shapes_s=80),
        "micro": None if text is None else _hostile_micro(text),
        "servers": None
        if text is None
        else Servers(
            postgres="per side",
            base=side_servers(),
            candidate=side_servers(text, text, text, text),
        ),
    }
    for key, value in changes.items():
        (judgement if key in _JUDGEMENT_FIELDS else values)[key] = value
    values["judgement"] = judgement
    return msgspec.convert(
        msgspec.to_builtins(values), GateVerdict, strict=True
    )  # validated as a loaded file would be
