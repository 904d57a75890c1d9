"""A gate verdict as ``perfci gate`` writes it, for the render and post tests."""

from __future__ import annotations

import msgspec

from ci.judge.gate_verdict import (
    Demoted,
    Design,
    GateVerdict,
    Harness,
    Look,
    LookDecision,
    MetricLook,
    ReportRow,
    Revision,
    Rule,
    SlaRow,
    Timings,
)

BASE_SHA, MERGE_SHA = "b" * 40, "c" * 40


def _metric(
    name: str,
    mode: str,
    threshold: float,
    change: float,
    failed: bool = False,
    base: float = 7.0,
) -> MetricLook:
    return MetricLook(
        name=name,
        direction="lower",
        mode=mode,
        fail_threshold=threshold,
        pairs=24,
        estimate=change,
        change=change,
        p_worse=0.0004 if failed else 0.4,
        p_within=0.9 if failed else 0.001,
        rejected=failed,
        failed=failed,
        within=not failed,
        base_median=base,
        candidate_median=base * (1 + change) if mode == "ratio" else base + change,
    )


def verdict(
    decision: LookDecision = "fail", text: str | None = None, **changes: object
) -> GateVerdict:
    """A verdict as perfci gate writes it; ``text`` replaces every free-text field."""
    metrics = (
        _metric("cpu_ms_per_request", "ratio", 0.05, 0.012),
        _metric("latency_p95", "ratio", 0.10, 0.123, failed=decision == "fail", base=20.0),
        _metric("error_rate", "absolute", 0.001, 0.0, base=0.0),
    )
    t = text or ""
    values: dict[str, object] = {
        "created_at": "2026-12-01T10:00:00+00:00",
        "decision": decision,
        "statistical_decision": decision,
        "reasons": (
            text or "latency_p95 +12.3 % over 24 windows, beyond its +10.0 % fail threshold",
        ),
        "base": Revision(text or "HEAD^1", BASE_SHA),
        "candidate": Revision(text or "HEAD", MERGE_SHA),
        "harness": Harness(
            revision="b" * 40,
            source=text or "base revision",
            changed=text is not None,
            paths=(t,) if text else (),
        ),
        "rule": Rule(
            alpha=0.01,
            pass_alpha=0.05,
            looks=(12, 24, 36),
            min_tail_samples=100,
            report_threshold=0.05,
            report_alpha=0.01,
            order_seed=7,
            bootstrap_seed=None,
        ),
        "design": Design(
            rate=75,
            window_s=10,
            warmup_windows=4,
            unique_fraction=0.3,
            write_fraction=0.02,
            workers=1,
            docs=20_000,
            embedder=text or "minilm",
            shapes=("ramp", "sse"),
            shape_time_scale=0.02,
            machine_class=text or "2cpu-24gb-x86_64",
        ),
        "pairs": 24,
        "looks": (Look(0, 12, "continue", 0.0033, metrics), Look(1, 24, decision, 0.0033, metrics)),
        "demoted": (Demoted("latency_p99", text or "report-only: 40 samples above p99"),),
        "report_only": (
            ReportRow(
                scenario=text or "duet",
                metric="latency_p90",
                mode="ratio",
                base=12.0,
                candidate=13.5,
                change=0.11,
                ci_low=0.07,
                ci_high=0.15,
                p_two_sided=0.0001,
                changed=True,
                note=text,
            ),
            ReportRow(
                scenario="duet",
                metric="peak_rss_mb",
                mode="ratio",
                base=200.0,
                candidate=201.0,
                change=0.005,
                ci_low=-0.01,
                ci_high=0.02,
                p_two_sided=0.7,
                changed=False,
            ),
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
        "files": {"windows": "windows.json"},
    }
    values.update(changes)
    return msgspec.convert(
        msgspec.to_builtins(values), GateVerdict, strict=True
    )  # validated as a loaded file would be
