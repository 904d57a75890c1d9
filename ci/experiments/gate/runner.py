"""``perfci gate``: one PR check, from two git refs to a verdict file and a report folder.

=====  =======================================================================  ============
step   what                                                                     module
=====  =======================================================================  ============
1      which harness files the pull request changed (the commits and the        checkout
       harness were chosen before, in ``checkout``)
2      detached worktrees; each side's venv from its own pyproject (cached)     checkout, venv
3      one stack: PostgreSQL; per side its own database built by its own        duo
       loader, its own Valkey server, its own service
4      duet windows until the rule decides (warm-up block, looks 12/24/36)      sequential
5      shape scenarios once per side (for the SLA and the report)               shapes
6      judge: the rule on the windows, the SLA against the base                 ci.judge
7      verdict.json, summary.md, report.html (``GateFolder``)                   outputs
=====  =======================================================================  ============

The windows run first, on services that only the warm-up block has touched; the shapes run
after them, on warm services (shapes run first would measure whichever side went first
cold). The windows' deadline leaves
``gate.shapes_reserve_s`` of the wall-time budget (``gate.budget_s``) for the shapes.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ci.experiments.gate.checkout import HarnessInfo, SideCheckout, harness_changes, side_checkouts
from ci.experiments.gate.duo import Duo, DuoSpec, ServiceSpec, duo_stack
from ci.experiments.gate.outputs import write_outputs
from ci.experiments.gate.sequential import Measured, measure_windows
from ci.experiments.gate.shapes import ShapeRuns, run_shapes
from ci.experiments.gate.venv import ensure_service_venv
from ci.experiments.gate.windows import DuetRunner, DuetTarget, duet_design, duet_load
from ci.judge.gate_decision import judge, sla_rows
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateVerdict, Harness, Revision, Timings
from ci.judge.sla import SlaPairCheck, check_sla_against_base
from ci.results.duet import DuetRevision, Side
from ci.settings import PerfConfig

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class GateRequest:
    """One gate run; the commits are resolved (``ci.experiments.gate.checkout``)."""

    repo: Path
    base: Revision
    candidate: Revision
    out_dir: Path
    config: PerfConfig
    machine_class: str
    harness_source: str
    harness_revision: str
    base_tree: Path | None = None  # a clean checkout of the base to run the base side from
    seed: int | None = None  # None: drawn, and recorded in the verdict
    venv_root: Path | None = None  # default: <repo>/.perfci/venvs
    shapes: bool = True
    service_env: Mapping[Side, Mapping[str, str]] = field(default_factory=dict)


def run_gate(request: GateRequest, progress: Progress = lambda _m: None) -> GateVerdict:
    """Measure, judge and write the report folder; return the verdict."""
    t0 = time.monotonic()
    gate = request.config.gate
    design = gate.design
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    changed = harness_changes(request.repo, request.base.sha, request.candidate.sha)
    harness = HarnessInfo(request.harness_revision, request.harness_source, changed)
    if harness.touched:
        progress(f"the candidate changes harness files ({len(changed)}); the base's harness runs")
    folder = GateFolder(request.out_dir)
    folder.root.mkdir(parents=True, exist_ok=True)
    venv_root = request.venv_root or request.repo / ".perfci" / "venvs"
    with (
        tempfile.TemporaryDirectory(prefix="perfci-gate-") as tmp,
        side_checkouts(
            request.repo, request.base.sha, request.candidate.sha, Path(tmp), request.base_tree
        ) as trees,
    ):
        pythons = {
            side: ensure_service_venv(trees[side].worktree, venv_root, progress).python
            for side in ("base", "candidate")
        }
        services = [
            ServiceSpec(side, trees[side], pythons[side], request.service_env.get(side, {}))
            for side in ("base", "candidate")
        ]
        spec = DuoSpec(design.docs, design.corpus_seed, design.embedder, design.workers)
        stack_dir = Path(tmp) / "stack"
        with duo_stack(services, spec, stack_dir, rng, progress) as duo:
            setup_s = time.monotonic() - t0
            progress(
                f"set up in {setup_s:.0f} s (service start order: {', '.join(duo.start_order)})"
            )
            reserve = design.shapes_reserve_s if request.shapes and design.shapes else 0.0
            measured = _windows(request, duo, trees, folder, seed, t0 - reserve, progress)
            shapes, shapes_s = _shapes(request, duo, trees, folder, stack_dir, rng, progress)
    recorded = Harness(harness.revision, harness.source, harness.touched, harness.changed_files)
    sla = sla_rows(_sla(shapes, request.config))
    verdict = GateVerdict(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        judgement=judge(
            measured.run, gate.rule, sla=sla, harness=recorded, stopped=measured.stopped
        ),
        rule=gate.rule,
        design=design if shapes is not None else msgspec.structs.replace(design, shapes=()),
        machine_class=request.machine_class,
        order_seed=seed,
        stopped=measured.stopped,
        base=request.base,
        candidate=request.candidate,
        harness=recorded,
        sla=sla,
        timings=Timings(
            total_s=round(time.monotonic() - t0, 1),
            setup_s=round(setup_s, 1),
            windows_s=round(measured.windows_s, 1),
            shapes_s=round(shapes_s, 1),
        ),
    )
    write_outputs(folder, verdict)
    return verdict


def _shapes(
    request: GateRequest,
    duo: Duo,
    trees: Mapping[Side, SideCheckout],
    folder: GateFolder,
    stack_dir: Path,
    rng: random.Random,
    progress: Progress,
) -> tuple[ShapeRuns | None, float]:
    design = request.config.gate.design
    if not request.shapes or not design.shapes:
        return None, 0.0
    t0 = time.monotonic()
    commits = {side: (trees[side].ref, trees[side].commit) for side in trees}
    sla = request.config.sla_for(request.machine_class)
    shapes = run_shapes(duo, design, sla, commits, folder.shapes, stack_dir, rng, progress)
    return shapes, time.monotonic() - t0


def _windows(
    request: GateRequest,
    duo: Duo,
    trees: Mapping[Side, SideCheckout],
    folder: GateFolder,
    seed: int,
    t0: float,
    progress: Progress,
) -> Measured:
    gate = request.config.gate
    sla = request.config.sla_for(request.machine_class)
    load = duet_load(gate.design, duo.corpus.query_log, sla.k6_env())
    sides: tuple[Side, Side] = ("base", "candidate")
    targets = {
        side: DuetTarget(
            side,
            duo.services[side].url,
            duo.services[side].pid,
            duo.services[side].database,
            duo.services[side].valkey_pid,
        )
        for side in sides
    }
    runner = DuetRunner(
        targets,
        load,
        folder.window_logs,
        nonce=f"{seed:x}",
        postgres_url=duo.servers.pg.url,
    )
    return measure_windows(
        runner,
        gate.rule,
        gate.design,
        duet_design(gate.design, seed),
        DuetRevision(trees["base"].ref, trees["base"].commit),
        DuetRevision(trees["candidate"].ref, trees["candidate"].commit),
        folder.windows,
        deadline=t0 + gate.design.budget_s,
        progress=progress,
        setup={side: duo.services[side].setup for side in ("base", "candidate")},
    )


def _sla(shapes: ShapeRuns | None, config: PerfConfig) -> list[SlaPairCheck]:
    if shapes is None:
        return []
    machine = shapes.results["candidate"].run.machine.machine_class
    return check_sla_against_base(
        [shapes.results["base"]],
        [shapes.results["candidate"]],
        config.sla_for(machine),
        config.compare,
    )
