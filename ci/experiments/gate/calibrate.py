"""``perfci calibrate``: the gate's real false-alarm and detection rates on this machine.

Every verdict is a full ``perfci gate`` (:func:`~ci.experiments.gate.runner.run_gate`: a
fresh stack, fresh service processes, each side's own worktree, venv, loader and Valkey)
of a commit against its parent, as a user's pull request is gated:

======  ==========================================================================
kind    the candidate commit, on the calibrated revision (``--ref``)
======  ==========================================================================
aa      a comment ``# calibration aa <i> <seed>`` appended to ``service/search.py``:
        every FAIL is a false alarm
slowed  the same comment, and ``SEARCH_DEBUG_CPU_SLOWDOWN``'s default in
        ``service/settings.py`` set to ``--slowdown`` (each search burns that share
        more CPU): every FAIL is a detection
======  ==========================================================================

The two kinds alternate (aa 1, slowed 1, aa 2, ...), so a drift of the machine hits both
alike. Verdict ``<kind> <i>`` has a seed of its own, derived from the campaign's seed, its
kind and ``i`` alone (:func:`plan`). Each verdict's report folder is ``<out>/<kind>-<i>``;
``calibration.json`` lists the verdicts so far and ``calibration.md`` renders them, both
rewritten after each verdict. Run again with the same ``--out``, the campaign resumes: the
verdicts already listed are kept, a folder a stopped run left half-written is measured
anew, and a larger ``--aa``/``--slowed`` adds verdicts to the same campaign.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ci.errors import ConfigError, RunError
from ci.experiments.gate.checkout import BASE_REVISION
from ci.experiments.gate.commits import commit_on, git
from ci.experiments.gate.runner import GateRequest, run_gate
from ci.judge.calibration import (
    Calibration,
    CalibrationKind,
    CalibrationVerdict,
    dump_calibration,
    load_calibration,
    summarize,
)
from ci.judge.gate_verdict import GateDecision, GateVerdict, Revision, Stopped
from ci.render.gate_calibration import calibration_markdown
from ci.settings import PerfConfig

CALIBRATION_FILE = "calibration.json"
CALIBRATION_MD = "calibration.md"
COMMENT_FILE = "service/search.py"
SETTINGS_FILE = "service/settings.py"
# the knob's declaration in service/settings.py, off by default
_SLOWDOWN_DEFAULT = re.compile(r"^(\s*debug_cpu_slowdown: float = )0\.0$", re.MULTILINE)
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Case:
    """One verdict of the campaign, before it is measured."""

    kind: CalibrationKind
    index: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index:03d}"


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """What the calibration keeps of a gate verdict."""

    decision: GateDecision
    windows: int
    stopped: Stopped
    cpu_change: float | None


# gate_one(parent, candidate, folder, seed): the gate of candidate against parent
GateOne = Callable[[str, str, Path, int], GateOutcome]


def plan(aa: int, slowed: int, seed: int) -> tuple[Case, ...]:
    """The verdicts, alternating kinds; a verdict's seed depends on (seed, kind, index) only,
    so a larger campaign with the same seed extends a smaller one."""
    counts: tuple[tuple[CalibrationKind, int], ...] = (("aa", aa), ("slowed", slowed))
    cases = []
    for i in range(1, max(aa, slowed) + 1):
        for kind, count in counts:
            if i <= count:
                verdict_seed = random.Random(f"{seed}:{kind}:{i}").randrange(2**31)
                cases.append(Case(kind, i, verdict_seed))
    return tuple(cases)


def calibration_commit(repo: Path, parent: str, case: Case, slowdown: float, work: Path) -> str:
    """The candidate commit of ``case`` on ``parent`` (the table in the module docstring)."""

    def edit(tree: Path) -> None:
        if case.kind == "slowed":
            settings = tree / SETTINGS_FILE
            text = settings.read_text(encoding="utf-8")
            new, n = _SLOWDOWN_DEFAULT.subn(rf"\g<1>{slowdown!r}", text)
            if n != 1:
                raise RunError(
                    f"{SETTINGS_FILE} at {parent[:12]}: found {n} lines "
                    "'debug_cpu_slowdown: float = 0.0' to set the slowdown on (need exactly 1)"
                )
            settings.write_text(new, encoding="utf-8")
        comment = tree / COMMENT_FILE
        text = comment.read_text(encoding="utf-8")
        comment.write_text(f"{text}# calibration {case.kind} {case.index} {case.seed}\n", "utf-8")

    message = f"calibration: {case.kind} {case.index} (seed {case.seed})"
    return commit_on(repo, parent, work / f"calibration-{case.name}", message, edit)


def run_calibration(
    repo: Path,
    ref: str,
    aa: int,
    slowed: int,
    slowdown: float,
    out_dir: Path,
    gate_one: GateOne,
    *,
    seed: int | None = None,
    cpu_fail_threshold: float | None = None,
    progress: Progress = lambda _m: None,
) -> Calibration:
    """The campaign's missing verdicts, one full gate each; ``calibration.json`` and
    ``calibration.md`` rewritten after each (and once before the first).
    ``cpu_fail_threshold``: the rule's, kept with a new campaign (the report says what the
    A/A spread of CPU costs under it)."""
    if aa < 0 or slowed < 0 or aa + slowed == 0:
        raise ConfigError(f"--aa {aa} --slowed {slowed}: ask for at least one verdict")
    if not 0 < slowdown <= 10:
        raise ConfigError(f"--slowdown {slowdown}: expected a share of CPU in (0, 10]")
    try:
        parent = git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    except RunError as exc:
        raise ConfigError(f"--ref {ref}: not a commit of {repo}") from exc
    calibration = _resume(out_dir, ref, parent, seed, slowdown, cpu_fail_threshold)
    done = {(v.kind, v.index) for v in calibration.verdicts}
    todo = [c for c in plan(aa, slowed, calibration.seed) if (c.kind, c.index) not in done]
    if done:
        progress(f"{out_dir}: {len(done)} verdicts kept, {len(todo)} to measure")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir, calibration)
    with tempfile.TemporaryDirectory(prefix="perfci-calibrate-") as tmp:
        for n, case in enumerate(todo, 1):
            folder = out_dir / case.name
            shutil.rmtree(folder, ignore_errors=True)  # a stopped run's half-written gate
            t0 = time.monotonic()
            candidate = calibration_commit(repo, parent, case, slowdown, Path(tmp))
            progress(
                f"verdict {n}/{len(todo)}: {case.name}, gate {parent[:12]} -> {candidate[:12]}"
            )
            outcome = gate_one(parent, candidate, folder, case.seed)
            verdict = CalibrationVerdict(
                case.kind,
                case.index,
                case.seed,
                candidate,
                outcome.decision,
                outcome.windows,
                outcome.stopped,
                outcome.cpu_change,
                round(time.monotonic() - t0, 1),
                case.name,
            )
            verdicts = (*calibration.verdicts, verdict)
            calibration = msgspec.structs.replace(
                calibration, verdicts=verdicts, summary=summarize(verdicts)
            )
            _write(out_dir, calibration)
            progress(f"{case.name}: {verdict.decision} after {verdict.windows} windows")
    return calibration


def _resume(
    out_dir: Path,
    ref: str,
    parent: str,
    seed: int | None,
    slowdown: float,
    cpu_fail_threshold: float | None,
) -> Calibration:
    """The campaign in ``out_dir`` (refused when it calibrates something else), or a new one."""
    path = out_dir / CALIBRATION_FILE
    if not path.exists():
        drawn = seed if seed is not None else random.SystemRandom().randrange(2**31)
        return Calibration(
            ref=ref,
            parent=parent,
            seed=drawn,
            slowdown=slowdown,
            cpu_fail_threshold=cpu_fail_threshold,
        )
    try:
        found = load_calibration(path.read_bytes())
    except (OSError, ValueError, msgspec.DecodeError) as exc:  # ValidationError is a ValueError
        raise ConfigError(f"{path}: not a calibration this perfci can resume: {exc}") from exc
    differs = [
        f"{name} {mine} (it has {theirs})"
        for name, mine, theirs in (
            ("--ref", parent, found.parent),
            ("--seed", found.seed if seed is None else seed, found.seed),
            ("--slowdown", slowdown, found.slowdown),
        )
        if mine != theirs
    ]
    if differs:
        raise ConfigError(
            f"{out_dir} holds another calibration: {'; '.join(differs)}; "
            "resume it with its own values or pick another --out"
        )
    if found.cpu_fail_threshold is None and cpu_fail_threshold is not None:
        return msgspec.structs.replace(found, cpu_fail_threshold=cpu_fail_threshold)
    return found


def _write(out_dir: Path, calibration: Calibration) -> None:
    (out_dir / CALIBRATION_FILE).write_bytes(dump_calibration(calibration))
    (out_dir / CALIBRATION_MD).write_text(calibration_markdown(calibration), encoding="utf-8")


def outcome_of(verdict: GateVerdict) -> GateOutcome:
    judgement = verdict.judgement
    cpu = next((m.change for m in judgement.primary if m.name == "cpu_ms_per_request"), None)
    return GateOutcome(judgement.decision, judgement.pairs, verdict.stopped, cpu)


def full_gate(
    repo: Path,
    ref: str,
    config: PerfConfig,
    machine_class: str,
    *,
    venv_root: Path | None = None,
    progress: Progress = lambda _m: None,
) -> GateOne:
    """``perfci gate``'s own run of candidate against parent, with the verdict's seed."""

    def gate_one(parent: str, candidate: str, folder: Path, seed: int) -> GateOutcome:
        request = GateRequest(
            repo=repo,
            base=Revision(ref, parent),
            candidate=Revision(f"{ref} + calibration {folder.name}", candidate),
            out_dir=folder,
            config=config,
            machine_class=machine_class,
            harness_source=BASE_REVISION,
            harness_revision=parent,
            seed=seed,
            venv_root=venv_root,
        )
        return outcome_of(run_gate(request, progress))

    return gate_one
