"""Sequential measuring: stop at a decided look, measure on when unclear, respect the budget."""

from __future__ import annotations

import math
import time
from pathlib import Path

import msgspec
import numpy as np

from ci.experiments.gate.sequential import Measured, measure_windows
from ci.results.duet import DuetDesign, DuetRevision, DuetWindow, Side, load_duet
from ci.settings.gate import GateDesign, GateRule
from tests.ci.judge.duet_factory import side

REV = DuetRevision("main", "a" * 40)
RULE = GateRule(looks=(12, 24, 36))
GATE = GateDesign(burst_gap_s=0.0)  # windows of a few ms here: no room for bursts apart
DESIGN = DuetDesign(
    rate=110.0, window_s=10.0, warmup_windows=4, unique_fraction=0.3, write_fraction=0.02,
    order_seed=3, workers=1,
)  # fmt: skip


class FakeRunner:
    """Windows whose candidate differs by ``effect`` (log scale) plus noise of SD ``sd``."""

    def __init__(self, sd: float, cpu_effect: float = 0.0, seconds: float = 0.0) -> None:
        self.rng = np.random.default_rng(1)
        self.sd = sd
        self.cpu_effect = cpu_effect
        self.seconds = seconds
        self.calls: list[tuple[int, int, bool, Side]] = []

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow:
        self.calls.append((index, block, warmup, slot_a))
        if self.seconds:
            time.sleep(self.seconds)
        n = self.rng.normal(0, self.sd, 3)
        cand = side(
            p50=4.0 * math.exp(n[0]),
            p90=25.0 * math.exp(n[1]),
            cpu_ms=3.5 * math.exp(n[2] + self.cpu_effect),
        )
        return DuetWindow(
            index=index, block=block, warmup=warmup, slot_a=slot_a,
            started_at="2026-12-01T10:00:00+00:00", duration_s=self.seconds,
            base=side(), candidate=cand,
        )  # fmt: skip


def test_a_clear_pass_stops_at_the_first_look(tmp_path: Path) -> None:
    runner = FakeRunner(sd=0.02)
    out = tmp_path / "windows.json"
    m = measure_windows(runner, RULE, GATE, DESIGN, REV, REV, out, deadline=time.monotonic() + 60)
    assert m.judgement.decision == "pass"
    assert m.stopped == "decided"
    assert len(runner.calls) == 4 + 12
    assert [c[2] for c in runner.calls] == [True] * 4 + [False] * 12
    assert load_duet(out) == m.run  # written as it grew


class CountingRunner(FakeRunner):
    """:class:`FakeRunner` whose sides' Valkey servers counted ``calls_counted`` commands."""

    calls_counted: tuple[int | None, int | None] = (2000, 3000)

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow:
        w = super().window(index, block, warmup, slot_a)
        base, candidate = self.calls_counted
        return msgspec.structs.replace(
            w,
            base=msgspec.structs.replace(w.base, valkey_calls=base),
            candidate=msgspec.structs.replace(w.candidate, valkey_calls=candidate),
        )


class UncountedRunner(CountingRunner):
    """:class:`FakeRunner` whose sides' Valkey commands were not counted (an older harness)."""

    calls_counted = (None, None)


def test_each_window_s_line_says_the_valkey_commands_when_counted(tmp_path: Path) -> None:
    lines: list[str] = []
    out = tmp_path / "windows.json"
    deadline = time.monotonic() + 60
    measure_windows(
        CountingRunner(sd=0.02), RULE, GATE, DESIGN, REV, REV, out, deadline=deadline,
        progress=lines.append,
    )  # fmt: skip
    requests = side().requests
    counted = f"Valkey {2000 / requests:.2f} / {3000 / requests:.2f} commands/req, "
    assert sum(counted in line for line in lines) == 16  # four warm-up windows, 12 measured
    plain: list[str] = []
    measure_windows(
        UncountedRunner(sd=0.02), RULE, GATE, DESIGN, REV, REV, out, deadline=deadline,
        progress=plain.append,
    )  # fmt: skip
    assert plain
    assert not any("Valkey" in line for line in plain)


def test_an_unclear_change_measures_up_to_the_last_look(tmp_path: Path) -> None:
    runner = FakeRunner(sd=0.01, cpu_effect=math.log(1.05))  # right at the 5 % threshold
    m = measure_windows(
        runner, RULE, GATE, DESIGN, REV, REV, tmp_path / "w.json", deadline=time.monotonic() + 60
    )
    assert len(runner.calls) == 4 + 36
    assert [look.pairs for look in m.judgement.looks] == [12, 24, 36]
    assert m.judgement.decision in ("inconclusive", "fail")
    assert m.stopped in ("last look", "decided")


def test_no_window_starts_past_the_deadline(tmp_path: Path) -> None:
    runner = FakeRunner(sd=0.01, cpu_effect=math.log(1.05), seconds=0.01)
    gate = GateDesign(window_s=0.01, burst_gap_s=0.0)
    m = measure_windows(
        runner, RULE, gate, DESIGN, REV, REV, tmp_path / "w.json", deadline=time.monotonic() + 0.25
    )
    assert m.stopped == "time budget"
    assert len(runner.calls) < 40
    assert m.judgement.decision in ("continue", "fail", "pass")


def _restarting(
    tmp_path: Path, gate: GateDesign, seconds: float = 0.0, room_s: float = 60.0
) -> tuple[list[int], Measured]:
    """Windows up to the last look (a change right at the threshold), with the window count
    seen at each restart."""
    runner = FakeRunner(sd=0.01, cpu_effect=math.log(1.05), seconds=seconds)
    seen: list[int] = []
    m = measure_windows(
        runner,
        RULE,
        gate,
        DESIGN,
        REV,
        REV,
        tmp_path / f"w{len(list(tmp_path.iterdir()))}.json",
        deadline=time.monotonic() + room_s,
        restart=lambda: seen.append(len(runner.calls)),
    )
    return seen, m


def test_restarts_fall_between_measured_blocks(tmp_path: Path) -> None:
    seen, m = _restarting(tmp_path, GateDesign(restart_every=1))
    assert len(m.run.windows) == 40
    # the warm-up's processes measure nothing; every measured block gets new ones
    assert seen == [4, 8, 12, 16, 20, 24, 28, 32, 36]
    assert [w.index for w in m.run.windows if w.restarted] == seen  # each pair's first
    assert _restarting(tmp_path, GateDesign(restart_every=2))[0] == [4, 12, 20, 28, 36]


def test_no_restart_with_restart_every_0(tmp_path: Path) -> None:
    seen, m = _restarting(tmp_path, GateDesign(restart_every=0))
    assert seen == []
    assert not any(w.restarted for w in m.run.windows)


def test_a_restart_that_would_overrun_the_deadline_is_not_begun(tmp_path: Path) -> None:
    # room for windows, not for a restart (RESTART_S)
    seen, m = _restarting(
        tmp_path, GateDesign(window_s=0.01, restart_every=1, burst_gap_s=0.0), 0.01, 3.0
    )
    assert seen == []
    assert m.stopped == "time budget"
    assert len(m.run.windows) == 4  # the warm-up block: the first measured one needs a restart
