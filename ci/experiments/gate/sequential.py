"""Measuring windows until the rule decides: the warm-up block, then the rule's looks.

After each look's windows the duet file is judged (:func:`ci.judge.duet.judge_duet`); a
pass or a fail stops the measuring, ``continue`` measures up to the next look. No window
starts past the deadline (the gate's wall-time budget): the verdict is then taken at the
last look reached, and an undecided one is inconclusive, never a silent pass.

With ``[gate] restart_every = N`` both services are restarted after the warm-up and after
every N measured blocks of 4 windows: two processes of identical code differ by a CPU
offset that stays constant while they run, and each restart draws a new one, so the
offsets average out over the blocks instead of reading as an effect. The first window
after a restart is marked ``restarted``: a new process's RSS still settles in it (the
judge leaves that window out of RSS growth's pairs).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec

from ci.experiments.gate.windows import abba_slots
from ci.judge.duet import DuetJudgement, judge_duet
from ci.judge.gate_verdict import Stopped
from ci.results.duet import (
    DuetDesign,
    DuetRevision,
    DuetRun,
    DuetWindow,
    Side,
    SidePlacement,
    SideSetup,
    dump_duet,
    restarted_before,
)
from ci.settings.gate import GateDesign, GateRule

Progress = Callable[[str], None]
RESTART_S = 10.0  # what a restart of both services is expected to take, until one is timed


class WindowSource(Protocol):
    """Measures one window (``windows.DuetRunner``; tests give a fake one)."""

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow: ...


@dataclass(frozen=True, slots=True)
class Measured:
    run: DuetRun
    judgement: DuetJudgement
    stopped: Stopped
    windows_s: float


def measure_windows(
    runner: WindowSource,
    rule: GateRule,
    gate: GateDesign,
    design: DuetDesign,
    base: DuetRevision,
    candidate: DuetRevision,
    out_file: Path,
    deadline: float,
    progress: Progress = lambda _m: None,
    setup: dict[str, SideSetup] | None = None,
    placement: dict[str, SidePlacement] | None = None,
    restart: Callable[[], None] | None = None,
) -> Measured:
    """Windows until a look decides, the last look, or the deadline (``time.monotonic()``);
    ``setup``, ``placement``: how each side's data layer was built and what the seed dealt
    it, kept in the duet file; ``restart``: restarts both services (``gate.restart_every``)."""
    t0 = time.monotonic()
    rng = random.Random(design.order_seed)
    warm_blocks = gate.warmup_windows // 4
    blocks = warm_blocks + math.ceil(rule.looks[-1] / 4)
    slots = abba_slots(blocks, rng)
    windows: list[DuetWindow] = []

    def snapshot() -> DuetRun:
        return DuetRun(
            base=base,
            candidate=candidate,
            design=design,
            windows=tuple(windows),
            setup=setup,
            placement=placement,
        )

    judgement: DuetJudgement | None = None
    stopped: Stopped = "last look"
    per_window = gate.window_s + 1.0  # updated from what the windows really take
    restarts_s: list[float] = []  # what the restarts really took (RESTART_S until one did)
    for look, target in enumerate(rule.looks):
        while len(windows) - gate.warmup_windows < target:
            i = len(windows)
            restarting = restart is not None and restarts_before(i, gate)
            per_restart = max(restarts_s, default=RESTART_S) if restarting else 0.0
            if time.monotonic() + per_window + per_restart > deadline:
                stopped = "time budget"
                break
            warm = i < gate.warmup_windows
            if restart is not None and restarting:
                began = time.monotonic()
                restart()
                restarts_s.append(time.monotonic() - began)
                progress(f"  both services restarted before block {i // 4}")
            w = runner.window(i, i // 4, warm, slots[i])
            if restarting:
                w = msgspec.structs.replace(w, restarted=True)
            windows.append(w)
            per_window = max(per_window, w.duration_s + 0.5)
            dump_duet(snapshot(), out_file)
            progress(_line(w, len(windows) - gate.warmup_windows))
        if stopped == "time budget":
            break
        judgement = judge_duet(snapshot(), rule)
        progress(f"look {look + 1} at {target} windows: {judgement.decision}")
        if judgement.decision in ("pass", "fail"):
            stopped = "decided"
            break
    run = snapshot()
    if judgement is None or stopped == "time budget":
        judgement = judge_duet(run, rule)
    return Measured(run, judgement, stopped, time.monotonic() - t0)


def restarts_before(index: int, gate: GateDesign) -> bool:
    """Whether both services restart before window ``index``
    (:func:`~ci.results.duet.restarted_before` under ``gate``'s design).

    The warm-up's processes measure nothing: they were started just after the loaders and
    loaded their models during the warm-up, side by side, and in A/A runs their CPU offset
    was the largest of any pair's (docs/gate-calibration.md). A restarted pair loads its
    models one after the other before the windows go on
    (:meth:`~ci.experiments.gate.duo.Duo.restart`)."""
    return restarted_before(index, gate.warmup_windows, gate.restart_every)


def _line(w: DuetWindow, measured: int) -> str:
    label = "warm-up" if w.warmup else f"window {measured}"
    b, c = w.base, w.candidate
    calls = (b.valkey_calls_per_request, c.valkey_calls_per_request)
    valkey = "" if None in calls else "Valkey {:.2f} / {:.2f} commands/req, ".format(*calls)
    return (
        f"  {label} (slot a = {w.slot_a}): p95 {b.latency_ms.p95:.1f} / {c.latency_ms.p95:.1f} ms, "
        f"CPU {b.cpu_ms_per_request or 0:.2f} / {c.cpu_ms_per_request or 0:.2f} ms/req, {valkey}"
        f"RSS {b.rss_end_mb or 0:.0f} / {c.rss_end_mb or 0:.0f} MB, "
        f"errors {b.failed} / {c.failed} (base / candidate)"
    )
