"""``perfci gate``: one PR check, from two git refs to a verdict file and a report folder.

=====  =======================================================================  ============
step   what                                                                     module
=====  =======================================================================  ============
1      resolve both refs; which harness files the pull request changed          checkout
2      detached worktrees; each side's venv from its own pyproject (cached)     checkout, venv
3      one stack: PostgreSQL + Valkey, the base loader seeds a template,        duo
       each side gets a clone, its own Valkey db, its own service
4      duet windows until the rule decides (warm-up block, looks 12/24/36)      sequential
5      shape scenarios once per side (for the SLA and the report)               shapes
6      judge: the rule on the windows, the SLA against the base                 ci.judge
7      verdict.json, windows.json, comment.md, summary.md, report.html          outputs
=====  =======================================================================  ============

The windows run first, on services that only the warm-up block has touched; the shapes run
after them, on warm services (run first, the side that went first was measured cold: its
spike p95 was 1.4 s against the other's 0.2 s). The windows' deadline leaves
``gate.shapes_reserve_s`` of the wall-time budget (``gate.budget_s``) for the shapes.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci.experiments.gate.checkout import (
    HarnessInfo,
    SideCheckout,
    harness_changes,
    resolve_sides,
    side_checkouts,
)
from ci.experiments.gate.duo import Duo, DuoSpec, ServiceSpec, duo_stack
from ci.experiments.gate.outputs import write_outputs
from ci.experiments.gate.sequential import Measured, measure_windows
from ci.experiments.gate.shapes import ShapeRuns, run_shapes
from ci.experiments.gate.venv import ensure_service_venv
from ci.experiments.gate.windows import DuetRunner, DuetTarget, duet_design, duet_load
from ci.judge.gate_decision import GateContext, gate_verdict
from ci.judge.gate_verdict import Design, GateVerdict, Harness, Revision, Timings
from ci.judge.sla import SlaPairCheck, check_sla_against_base
from ci.results.duet import DuetRevision, Side
from ci.settings import PerfConfig

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class GateRequest:
    repo: Path
    base_ref: str
    candidate_ref: str
    out_dir: Path
    config: PerfConfig
    machine_class: str
    harness_source: str | None = None  # None: "base revision" when the revision is the base's
    harness_revision: str = "unknown"
    seed: int | None = None  # None: drawn, and recorded in the verdict
    venv_root: Path | None = None  # default: <repo>/.perfci/venvs
    shapes: bool = True
    service_env: Mapping[Side, Mapping[str, str]] = field(default_factory=dict)


def run_gate(request: GateRequest, progress: Progress = lambda _m: None) -> GateVerdict:
    """Measure, judge and write the report folder; return the verdict."""
    t0 = time.monotonic()
    gate = request.config.gate
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    commits = resolve_sides(request.repo, request.base_ref, request.candidate_ref)
    changed = harness_changes(request.repo, commits["base"], commits["candidate"])
    source = request.harness_source or (
        "base revision"
        if request.harness_revision == commits["base"]
        else f"checkout {request.harness_revision[:12]} (not the base revision)"
    )
    harness = HarnessInfo(request.harness_revision, source, changed)
    if harness.touched:
        progress(f"the candidate changes harness files ({len(changed)}); the base's harness runs")
    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    venv_root = request.venv_root or request.repo / ".perfci" / "venvs"
    with (
        tempfile.TemporaryDirectory(prefix="perfci-gate-") as tmp,
        side_checkouts(request.repo, request.base_ref, request.candidate_ref, Path(tmp)) as trees,
    ):
        pythons = {
            side: ensure_service_venv(trees[side].worktree, venv_root, progress).python
            for side in ("base", "candidate")
        }
        services = [
            ServiceSpec(side, trees[side], pythons[side], request.service_env.get(side, {}))
            for side in ("base", "candidate")
        ]
        spec = DuoSpec(gate.docs, gate.corpus_seed, gate.embedder, gate.workers)
        stack_dir = Path(tmp) / "stack"
        with duo_stack(services, spec, stack_dir, rng, progress) as duo:
            setup_s = time.monotonic() - t0
            progress(
                f"set up in {setup_s:.0f} s (service start order: {', '.join(duo.start_order)})"
            )
            reserve = gate.shapes_reserve_s if request.shapes and gate.shapes else 0.0
            measured = _windows(request, duo, trees, out, seed, t0 - reserve, progress)
            shapes, shapes_s = _shapes(request, duo, trees, out, stack_dir, rng, progress)
    sla = _sla(shapes, request.config)
    design = Design(
        rate=gate.rate,
        window_s=gate.window_s,
        warmup_windows=gate.warmup_windows,
        unique_fraction=gate.unique_fraction,
        write_fraction=gate.write_fraction,
        workers=gate.workers,
        docs=gate.docs,
        embedder=gate.embedder,
        shapes=gate.shapes if request.shapes else (),
        shape_time_scale=gate.shape_time_scale,
        machine_class=request.machine_class,
    )
    context = GateContext(
        base=Revision(request.base_ref, commits["base"]),
        candidate=Revision(request.candidate_ref, commits["candidate"]),
        harness=Harness(harness.revision, harness.source, harness.touched, harness.changed_files),
        design=design,
        order_seed=seed,
        stopped=measured.stopped,
        timings=Timings(
            total_s=round(time.monotonic() - t0, 1),
            setup_s=round(setup_s, 1),
            windows_s=round(measured.windows_s, 1),
            shapes_s=round(shapes_s, 1),
        ),
        files=_files(out, shapes),
    )
    verdict = gate_verdict(measured.judgement, sla, gate, context)
    write_outputs(out, verdict, shapes)
    return verdict


def _shapes(
    request: GateRequest,
    duo: Duo,
    trees: Mapping[Side, SideCheckout],
    out: Path,
    stack_dir: Path,
    rng: random.Random,
    progress: Progress,
) -> tuple[ShapeRuns | None, float]:
    if not request.shapes or not request.config.gate.shapes:
        return None, 0.0
    t0 = time.monotonic()
    commits = {side: (trees[side].ref, trees[side].commit) for side in trees}
    sla = request.config.sla_for(request.machine_class)
    shapes = run_shapes(
        duo, request.config.gate, sla, commits, out / "shapes", stack_dir, rng, progress
    )
    return shapes, time.monotonic() - t0


def _windows(
    request: GateRequest,
    duo: Duo,
    trees: Mapping[Side, SideCheckout],
    out: Path,
    seed: int,
    t0: float,
    progress: Progress,
) -> Measured:
    gate = request.config.gate
    sla = request.config.sla_for(request.machine_class)
    load = duet_load(gate, duo.corpus.query_log, sla.k6_env())
    targets = {
        side: DuetTarget(side, duo.services[side].url, duo.services[side].pid)
        for side in ("base", "candidate")
    }
    runner = DuetRunner(targets, load, out / "windows", nonce=f"{seed:x}")  # type: ignore[arg-type]
    design = duet_design(gate, seed)
    return measure_windows(
        runner,
        gate,
        design,
        DuetRevision(trees["base"].ref, trees["base"].commit),
        DuetRevision(trees["candidate"].ref, trees["candidate"].commit),
        out / "windows.json",
        deadline=t0 + gate.budget_s,
        progress=progress,
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


def _files(out: Path, shapes: ShapeRuns | None) -> dict[str, str]:
    files = {"windows": "windows.json", "comment": "comment.md", "summary": "summary.md"}
    files["report"] = "report.html"
    if shapes is not None:
        for side, path in shapes.files.items():
            files[f"shapes_{side}"] = str(path.relative_to(out))
    return files
