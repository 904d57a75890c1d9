"""Gate verdicts for tests: judged from drawn duet windows, with chosen SLA rows."""

from __future__ import annotations

from collections.abc import Sequence

from ci.judge.gate_decision import judge, sla_rows
from ci.judge.gate_verdict import GateVerdict, Harness, Revision, Stopped, Timings
from ci.judge.sla import SlaPairCheck
from ci.results.duet import DuetRun
from ci.results.micro import MicroRun
from ci.results.quality import QualityRun
from ci.settings.gate import GateDesign, GateRule
from tests.ci.judge.duet_factory import drawn_run

RULE = GateRule()


def sla_row(status: str, name: str = "error_rate", scenario: str = "sse") -> SlaPairCheck:
    messages = {
        "fail": f"SLA {scenario}/{name}: the candidate breaches it (0.02 vs limit < 0.001) "
        "and the base does not (0)",
        "pre-existing": f"SLA {scenario}/{name}: both breach it: pre-existing, does not block",
    }
    return SlaPairCheck(
        scenario, name, 0.001, "<", 0.0 if status == "fail" else 0.02, 0.02,
        status,  # type: ignore[arg-type]  # the tests pass valid statuses
        messages.get(status),
    )  # fmt: skip


def verdict(
    run: DuetRun | None = None,
    sla: Sequence[SlaPairCheck] = (),
    rule: GateRule = RULE,
    *,
    stopped: Stopped = "decided",
    changed: tuple[str, ...] = (),
    base_ref: str = "main",
    base_sha: str = "a" * 40,
    candidate_sha: str = "b" * 40,
    quality: QualityRun | None = None,
    micro: MicroRun | None = None,
) -> GateVerdict:
    """A verdict as ``perfci gate`` writes it, judged by :func:`judge` from ``run``."""
    windows = run if run is not None else drawn_run(12, sd=0.02)
    harness = Harness(base_sha, "base revision", bool(changed), changed)
    rows = sla_rows(sla)
    return GateVerdict(
        created_at="2026-12-01T10:00:00+00:00",
        judgement=judge(
            windows,
            rule,
            sla=rows,
            harness=harness,
            stopped=stopped,
            quality=quality,
            micro=micro,
        ),
        rule=rule,
        design=GateDesign(),
        machine_class="local-2cpu",
        order_seed=11,
        stopped=stopped,
        base=Revision(base_ref, base_sha),
        candidate=Revision("refs/pull/7/merge", candidate_sha),
        harness=harness,
        sla=rows,
        timings=Timings(total_s=300.0, setup_s=10.0, windows_s=180.0, shapes_s=90.0),
        quality=quality,
        micro=micro,
    )
