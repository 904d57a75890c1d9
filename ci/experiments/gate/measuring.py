"""The windows on a running :class:`~ci.experiments.gate.duo.Duo`: what k6 drives on each
side, the services' restarts between blocks, py-spy on both sides throughout, and a service
that exits meanwhile told apart from a harness fault.

=====================  ====================================================================
piece                  what
=====================  ====================================================================
:func:`duet_targets`   each side as the windows read it: its service, database, Valkey and
                       relay processes
:func:`duet_runner`    the windows' runner for both sides (``ci.experiments.gate.windows``)
:func:`measure_duo`    the windows until the rule decides (``ci.experiments.gate.sequential``);
                       a restart stops py-spy, restarts both services (and their relays),
                       points the runner at the new processes and starts py-spy on them
=====================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci.errors import PerfCIError, SideFailure
from ci.experiments.gate.duo import Duo
from ci.experiments.gate.flames import SideProfiles
from ci.experiments.gate.k6_window import DuetLoad, duet_load
from ci.experiments.gate.sequential import Measured, measure_windows
from ci.experiments.gate.windows import DuetRunner, DuetTarget, duet_design
from ci.judge.gate_folder import GateFolder
from ci.results.duet import SIDES, DuetRevision, Side
from ci.settings.gate import GateConfig
from ci.settings.perf import SlaConfig

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """What the windows need besides the running stack: the gate's rule and design, the SLA
    whose limits the duet scenario checks, the revisions measured, the run's seed, and the
    moment (``time.monotonic()``) after which no window starts."""

    gate: GateConfig
    sla: SlaConfig
    revisions: Mapping[Side, DuetRevision]
    seed: int
    deadline: float


def duet_targets(duo: Duo) -> dict[Side, DuetTarget]:
    """Both sides of ``duo`` as the windows see them: service, database, Valkey, relay."""
    return {
        side: DuetTarget(
            side,
            duo.services[side].url,
            duo.services[side].pid,
            duo.services[side].database,
            duo.services[side].valkey_pid,
            duo.services[side].postgres_url,
            duo.services[side].relay_pid,
            duo.services[side].redis_url,
        )
        for side in SIDES
    }


def duet_runner(duo: Duo, load: DuetLoad, out: Path, *, nonce: str) -> DuetRunner:
    """The windows' runner for both sides of ``duo``: each side's service, database and Valkey."""
    return DuetRunner(duet_targets(duo), load, out, nonce=nonce)


def measure_duo(
    duo: Duo, plan: WindowPlan, folder: GateFolder, profiles: SideProfiles, progress: Progress
) -> Measured:
    """The windows, with ``profiles`` recording both sides from the first window to the last
    (stopped however the windows end). A service that exits meanwhile is its side's failure
    (:class:`~ci.errors.SideFailure`), unless the windows already failed the candidate."""
    design = plan.gate.design
    load = duet_load(design, duo.corpus.query_log, plan.sla.k6_env())
    runner = duet_runner(duo, load, folder.window_logs, nonce=f"{plan.seed:x}")

    def restart() -> None:
        profiles.stop()
        duo.restart()
        runner.retarget(duet_targets(duo))
        runner.settle(duo.restarts)
        profiles.start(_pids(duo))

    profiles.start(_pids(duo))
    try:
        measured = measure_windows(
            runner,
            plan.gate.rule,
            design,
            duet_design(design, plan.seed),
            plan.revisions["base"],
            plan.revisions["candidate"],
            folder.windows,
            deadline=plan.deadline,
            progress=progress,
            setup={side: duo.services[side].setup for side in SIDES},
            placement={side: duo.services[side].placement for side in SIDES},
            restart=restart if design.restart_every else None,
        )
    except PerfCIError as exc:
        gone = duo.exited(SIDES)
        if not gone:
            raise
        raise SideFailure(gone[0], f"its service exited during the windows ({exc})") from exc
    finally:
        profiles.stop()
        runner.close()
    gone = duo.exited(SIDES)
    if gone and measured.judgement.decision != "fail":
        raise SideFailure(gone[0], "its service exited during the windows")
    return measured


def _pids(duo: Duo) -> dict[str, int]:
    return {side: duo.services[side].pid for side in duo.start_order}
