"""Gate verdicts for tests: judged from drawn duet windows, with chosen SLA rows."""

from __future__ import annotations

from collections.abc import Sequence

from ci.judge.duet import judge_duet
from ci.judge.gate_decision import GateContext, gate_verdict
from ci.judge.gate_verdict import Design, GateVerdict, Harness, Revision, Timings
from ci.judge.sla import SlaPairCheck
from ci.results.duet import DuetRun
from ci.settings.gate import GateConfig
from tests.ci.judge.duet_factory import drawn_run

CONFIG = GateConfig()


def context(
    *, stopped: str = "decided", changed: tuple[str, ...] = (), base_ref: str = "main"
) -> GateContext:
    return GateContext(
        base=Revision(base_ref, "a" * 40),
        candidate=Revision("refs/pull/7/merge", "b" * 40),
        harness=Harness("a" * 40, "base revision", bool(changed), changed),
        design=Design(
            rate=120.0,
            window_s=10.0,
            warmup_windows=4,
            unique_fraction=0.3,
            write_fraction=0.02,
            workers=1,
            docs=20000,
            embedder="minilm",
            shapes=("ramp", "spike", "sse", "connections"),
            shape_time_scale=0.02,
            machine_class="local-2cpu",
        ),
        order_seed=11,
        stopped=stopped,
        timings=Timings(total_s=300.0, setup_s=10.0, windows_s=180.0, shapes_s=90.0),
        files={"windows": "windows.json"},
    )


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
    config: GateConfig = CONFIG,
    **ctx: object,
) -> GateVerdict:
    judged = judge_duet(run if run is not None else drawn_run(12, sd=0.02), config)
    return gate_verdict(judged, sla, config, context(**ctx))  # type: ignore[arg-type]
