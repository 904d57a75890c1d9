"""``perfci gate``: one PR check, from two git refs to a verdict file and a report folder.

=====  =======================================================================  ============
step   what                                                                     module
=====  =======================================================================  ============
1      which harness files the pull request changed (the commits and the        checkout
       harness were chosen before, in ``checkout``)
2      the seed deals each side a slot name, ports, a start position, CPUs;     symmetry,
       worktrees named by slot; each side's venv from its own lock (cached)     checkout, venv
3      one stack: per side its own database built by its own loader, its own    duo,
       Valkey server, its own service; the servers from its venv (one           servers
       PostgreSQL for both when their builds are the same, else one per side)
4      duet windows until the rule decides (warm-up block, looks 12 and 20),    measuring,
       both services restarted between blocks; py-spy samples both sides        sequential,
       meanwhile (kept on a FAIL)                                               flames
5      the recall check: a fixed query sample, each side against its own        recall,
       exact scan (a short-lived exact-mode service of that side), and the      quality
       candidate's code on the base's graph against the base's
6      micro-benchmarks of the search hot path: rounds of one fresh process     micro
       per side, each side's own code and venv
7      shape scenarios once per side (for the SLA and the report)               shapes
8      judge: the rule on the windows, the SLA, recall and the                  ci.judge
       micro-benchmarks against the base
9      verdict.json, summary.md, report.html (``GateFolder``)                   outputs
=====  =======================================================================  ============

The windows run first, on services that only the warm-up block has touched; the shapes run
after them, on warm services (shapes run first would measure whichever side went first
cold). Set-up (steps 1-3) has its own limit, ``gate.setup_budget_s``; the measuring budget
``gate.budget_s`` counts from the moment both services are ready, and the windows'
deadline leaves ``gate.shapes_reserve_s`` of it for the shapes.

A candidate that breaks gets a verdict, never a crash: its venv that cannot be built, its
own loader or service that fails or never becomes ready, a service that exits during the
windows, a micro-benchmark process that fails, errors that stop the shape scenarios
(:class:`~ci.errors.SideFailure`). Each is judged as the candidate's failure with the
cause among the reasons, over whatever windows were measured, and the verdict is written;
a decision the windows reached stays in it.
The same faults on the base side, and every other error, are the harness's: the gate stops
with an error and writes no verdict.
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

from ci.errors import PerfCIError, RunError, SideFailure
from ci.experiments.gate.checkout import HarnessInfo, SideCheckout, harness_changes, side_checkouts
from ci.experiments.gate.duo import Duo, DuoSpec, ServiceSpec, duo_stack
from ci.experiments.gate.flames import Recorded, SideProfiles, keep_flames
from ci.experiments.gate.measuring import WindowPlan, measure_duo
from ci.experiments.gate.micro import measure_micro
from ci.experiments.gate.outputs import write_outputs
from ci.experiments.gate.recall import recall_check
from ci.experiments.gate.sequential import Measured
from ci.experiments.gate.servers import SideInstall, servers_record, side_install
from ci.experiments.gate.shapes import ShapeRuns, run_shapes
from ci.experiments.gate.sidecode import side_code
from ci.experiments.gate.symmetry import deal_sides
from ci.experiments.gate.venv import (
    ServiceVenv,
    ensure_service_venv,
    installed_versions,
    version_differences,
)
from ci.experiments.gate.windows import duet_design
from ci.judge.gate_decision import judge, sla_rows
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import (
    DependencyChange,
    GateVerdict,
    Harness,
    Revision,
    Servers,
    Stopped,
    Timings,
)
from ci.judge.sla import SlaPairCheck, check_sla_against_base
from ci.results.duet import SIDES, DuetRevision, DuetRun, Side, dump_duet, load_duet
from ci.results.micro import MicroRun
from ci.results.quality import QualityRun
from ci.settings import PerfConfig
from ci.settings.gate import GateDesign

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
    deal = deal_sides(SIDES, seed, pin_cpus=design.pin_cpus)
    changed = harness_changes(request.repo, request.base.sha, request.candidate.sha)
    harness = HarnessInfo(request.harness_revision, request.harness_source, changed)
    if harness.touched:
        progress(f"the candidate changes harness files ({len(changed)}); the base's harness runs")
    folder = GateFolder(request.out_dir)
    folder.root.mkdir(parents=True, exist_ok=True)
    venv_root = request.venv_root or request.repo / ".perfci" / "venvs"
    measured: Measured | None = None
    shapes: ShapeRuns | None = None
    shapes_s = 0.0
    setup_s: float | None = None
    failure: str | None = None
    dependencies: tuple[DependencyChange, ...] = ()
    servers: Servers | None = None
    quality: QualityRun | None = None
    micro: MicroRun | None = None
    profiled = Recorded((), {})
    with (
        tempfile.TemporaryDirectory(prefix="perfci-gate-") as tmp,
        side_checkouts(
            request.repo,
            request.base.sha,
            request.candidate.sha,
            Path(tmp),
            {side: deal.slot(side) for side in SIDES},
        ) as trees,
    ):
        revisions = {s: DuetRevision(trees[s].ref, trees[s].commit) for s in trees}
        try:
            venvs = {side: _venv(trees[side], venv_root, progress, side) for side in trees}
            pythons = {side: venv.python for side, venv in venvs.items()}
            dependencies = _dependency_changes(venvs, progress)
            installs = {side: _install(venvs[side], side, progress) for side in SIDES}
            servers = servers_record(installs["base"], installs["candidate"])
            _check_setup(t0, design.setup_budget_s, "building the venvs")
            services = [
                ServiceSpec(
                    side,
                    trees[side],
                    pythons[side],
                    request.service_env.get(side, {}),
                    installs[side],
                )
                for side in ("base", "candidate")
            ]
            spec = DuoSpec(
                design.docs, design.corpus_seed, design.embedder, design.workers, design.db_rtt_ms
            )
            stack_dir = Path(tmp) / "stack"
            with duo_stack(services, spec, stack_dir, rng, progress, deal=deal) as duo:
                setup_s = time.monotonic() - t0
                _check_setup(t0, design.setup_budget_s, "starting the stack and both services")
                progress(
                    f"set up in {setup_s:.0f} s (service start order: {', '.join(duo.start_order)})"
                )
                reserve = design.shapes_reserve_s if request.shapes and design.shapes else 0.0
                plan = WindowPlan(
                    gate,
                    request.config.sla_for(request.machine_class),
                    revisions,
                    seed,
                    deadline=time.monotonic() - reserve + design.budget_s,
                )
                profiles = SideProfiles(folder, design.budget_s, progress)
                try:
                    measured = measure_duo(duo, plan, folder, profiles, progress)
                finally:
                    profiled = profiles.recorded()
                code = {
                    side: side_code(
                        trees[side],
                        pythons[side],
                        design.embedder,
                        request.service_env.get(side, {}),
                        duo.services[side].placement,
                    )
                    for side in SIDES
                }
                quality = recall_check(design, duo, code, stack_dir / "truth", progress)
                rounds = design.micro_rounds  # 0: no micro-benchmarks
                micro = measure_micro(code, rounds, seed, progress) if rounds else None
                shapes, shapes_s = _shapes(request, duo, trees, folder, stack_dir, rng, progress)
        except SideFailure as exc:
            if exc.side != "candidate":
                msg = f"the {exc.side} side failed, so nothing can be judged: {exc}"
                raise PerfCIError(msg) from exc
            failure = _cause(exc)
            progress(f"the candidate failed: {failure}")
    if setup_s is None:
        setup_s = time.monotonic() - t0
    run = (
        measured.run if measured is not None else _measured_so_far(folder, design, seed, revisions)
    )
    stopped: Stopped = measured.stopped if measured is not None else "candidate failed"
    recorded = Harness(harness.revision, harness.source, harness.touched, harness.changed_files)
    sla = sla_rows(_sla(shapes, request.config))
    judgement = judge(
        run,
        gate.rule,
        sla=sla,
        harness=recorded,
        stopped=stopped,
        failure=failure,
        dependencies=dependencies,
        quality=quality,
        micro=micro,
    )
    verdict = GateVerdict(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        judgement=judgement,
        rule=gate.rule,
        design=design if shapes is not None else msgspec.structs.replace(design, shapes=()),
        machine_class=request.machine_class,
        order_seed=seed,
        stopped=stopped,
        base=request.base,
        candidate=request.candidate,
        harness=recorded,
        sla=sla,
        timings=Timings(
            total_s=round(time.monotonic() - t0, 1),
            setup_s=round(setup_s, 1),
            windows_s=round(measured.windows_s if measured is not None else 0.0, 1),
            shapes_s=round(shapes_s, 1),
        ),
        failure=failure,
        dependencies=dependencies,
        quality=quality,
        micro=micro,
        servers=servers,
        flamegraphs=keep_flames(folder, profiled, judgement.decision == "fail"),
    )
    write_outputs(folder, verdict)
    return verdict


MAX_CAUSE = 800  # characters of a failure's message in the verdict (log tails are longer)


def _cause(exc: SideFailure) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 3] + "..."


def _venv(tree: SideCheckout, root: Path, progress: Progress, side: Side) -> ServiceVenv:
    try:
        return ensure_service_venv(tree.worktree, root, progress)
    except RunError as exc:  # pip could not build it from that revision's dependencies
        raise SideFailure(side, f"its venv could not be built: {exc}") from exc


def _install(venv: ServiceVenv, side: Side, progress: Progress) -> SideInstall:
    """The side's servers from its venv (the harness's where it has none, said here)."""
    install = side_install(venv.path, side)
    for name, source in (("PostgreSQL", install.postgres_from), ("Valkey", install.valkey_from)):
        if source == "harness":
            progress(f"the {side}'s venv has no {name} of its own: the harness's runs for it")
    return install


def _dependency_changes(
    venvs: Mapping[Side, ServiceVenv], progress: Progress
) -> tuple[DependencyChange, ...]:
    base, candidate = (installed_versions(venvs[s].path) for s in ("base", "candidate"))
    changes = tuple(DependencyChange(*d) for d in version_differences(base, candidate))
    if changes:
        progress(f"{len(changes)} package(s) resolve to other versions on the two sides")
    return changes


def _check_setup(t0: float, limit: float, step: str) -> None:
    spent = time.monotonic() - t0
    if spent > limit:
        raise PerfCIError(
            f"set-up took {spent:.0f} s by the end of {step}, beyond gate.setup_budget_s = "
            f"{limit:g} s (a cold venv or embedding cache? raise the limit in perf.toml [gate])"
        )


def _measured_so_far(
    folder: GateFolder, design: GateDesign, seed: int, revisions: Mapping[Side, DuetRevision]
) -> DuetRun:
    """The windows written before the candidate failed (none if it failed before them)."""
    if folder.windows.exists():
        return load_duet(folder.windows)
    run = DuetRun(
        base=revisions["base"],
        candidate=revisions["candidate"],
        design=duet_design(design, seed),
        windows=(),
    )
    dump_duet(run, folder.windows)
    return run


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


def _sla(shapes: ShapeRuns | None, config: PerfConfig) -> list[SlaPairCheck]:
    if shapes is None:
        return []
    machine = shapes.results["candidate"].run.machine.machine_class
    return check_sla_against_base(
        [shapes.results["base"]],
        [shapes.results["candidate"]],
        config.sla_for(machine),
    )
