"""The shape scenarios (ramp, spike, SSE, connections), once per side, for the SLA and report.

They run through ``perfci run``'s own machinery (:func:`ci.measure.run.execute`) against
each side's running service, one side after the other in a seeded random order, with a
short time scale from ``perf.toml [gate]``. Each side's ``results.json`` names that side's
commit (not the harness's), so the report folder reads like any A/B run.

A scenario that cannot run against a side (its warm-up meets errors, its service is gone)
raises :class:`~ci.errors.SideFailure` naming that side, so that the runner keeps the
windows' verdict and says which side broke.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ci.errors import PerfCIError, SideFailure
from ci.experiments.gate.duo import Duo
from ci.measure.profiles import Profile
from ci.measure.run import RunRequest, execute
from ci.results import RunResults, dump_results
from ci.results.duet import SIDES, Side
from ci.settings import SlaConfig, StackSettings
from ci.settings.gate import GateDesign

Progress = Callable[[str], None]


def shape_profile(config: GateDesign) -> Profile:
    """The smoke profile's shapes on the gate's corpus, at the gate's time scale."""
    return Profile(
        name="gate",
        description="the PR gate's shape scenarios, once per side",
        scenarios=config.shapes,
        time_scale=config.shape_time_scale,
        vu_scale=config.shape_vu_scale,
        docs=config.docs,
        embedder=config.embedder,
        connections=1000,
        hold_s=1.5,  # held connections idle 1.5 s: the hold phase lasts 3.75 s, not 10
        sse_streams=100,
        sse_k=500,
        rate=config.rate,
        attack_s=10,
        write_fraction=config.write_fraction,
    )


@dataclass(frozen=True, slots=True)
class ShapeRuns:
    results: Mapping[Side, RunResults]
    files: Mapping[Side, Path]
    order: tuple[Side, ...]


def run_shapes(
    duo: Duo,
    config: GateDesign,
    sla: SlaConfig,
    commits: Mapping[Side, tuple[str, str]],  # side -> (ref, commit)
    out_dir: Path,
    stack_dir: Path,
    rng: random.Random,
    progress: Progress = lambda _m: None,
) -> ShapeRuns:
    """Every shape scenario against each side's service; ``results.json`` per side."""
    profile = shape_profile(config)
    order: tuple[Side, ...] = tuple(rng.sample(list(SIDES), len(SIDES)))
    results: dict[Side, RunResults] = {}
    files: dict[Side, Path] = {}
    for side in order:
        service = duo.services[side]
        progress(f"shape scenarios on the {side} service: {', '.join(config.shapes)}")
        request = RunRequest(
            profile=profile,
            scenarios=config.shapes,
            out_dir=out_dir / side,
            # the run reads the corpus's query log from the stack folder, and samples no
            # processes of a target it did not start
            stack=StackSettings(run_dir=stack_dir),
            target=service.url,
            seed=config.corpus_seed,
            rss_slope_mb_per_10min=sla.rss_slope_mb_per_10min,
            sla=sla,
        )
        try:
            outcome = execute(request, lambda m: progress(f"  {m}"))
        except PerfCIError as exc:
            raise SideFailure(side, f"the shape scenarios failed on it: {exc}") from exc
        ref, commit = commits[side]
        fixed = msgspec.structs.replace(
            outcome.results,
            run=msgspec.structs.replace(outcome.results.run, git_commit=commit, git_ref=ref),
        )
        path = outcome.run_dir / "results.json"
        dump_results(fixed, path)
        results[side] = fixed
        files[side] = path
    return ShapeRuns(results, files, order)
