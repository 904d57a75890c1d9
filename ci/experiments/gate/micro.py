"""The gate's micro-benchmarks: the search hot path's functions, timed in each side's own code.

The windows judge a side's CPU per request as a whole (its service, PostgreSQL backends and
Valkey), where a 5 % threshold is the finest that process-to-process CPU offsets allow. A
function several times slower can still cost only a percent of that: stdlib ``json`` for
a search answer's body costs ~18 us more per search. This stage times the functions
themselves.

=====================  ===================================================================
what                   how
=====================  ===================================================================
the cases              ``micro_cases.py`` beside this module, the harness's (the base
                       revision's) for both sides; it imports only the standard library
                       and the side's ``service``
a side's process       its own venv's python, its worktree as the working directory, the
                       environment of its measured service but for ``PYTHONHASHSEED``;
                       at most :data:`MICRO_TIMEOUT_S`
a round                one fresh process per side, one after the other; the first side is
                       drawn from the run's seed for round 0 and alternates after it
                       (base-candidate, candidate-base, ...: ABBA), so that neither side
                       always runs first. Both processes of a round get one
                       ``PYTHONHASHSEED``, drawn anew each round from the run's seed
                       (:func:`round_hash_seeds`): with one fixed seed a side's string
                       hashes (its paths among them), and so its dicts' layouts, would be
                       the same in all its processes, a difference between the sides that
                       no number of rounds averages out
a failed process       the script's exit status or output is bad: that side's failure
                       (:class:`~ci.errors.SideFailure`); when both sides' processes of a
                       round fail, the harness's (:class:`~ci.errors.RunError`)
=====================  ===================================================================

A case a side's code lacks is missing on that side (None), not a failure. The figures go
into ``verdict.json`` (:class:`~ci.results.micro.MicroRun`) and :mod:`ci.judge.micro`
decides.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from ci.errors import RunError, SideFailure
from ci.experiments.gate.sidecode import SideCode
from ci.results.duet import SIDES, Side
from ci.results.micro import MicroRound, MicroRun

MICRO_SCRIPT = Path(__file__).with_name("micro_cases.py")
MICRO_TIMEOUT_S = 120.0  # one side's process (it takes about a second)
MAX_STDERR = 2000  # characters of a failed process's stderr in its error
Progress = Callable[[str], None]
Figures = dict[str, float | None]  # the script's output: case -> seconds per call


def run_cases(side: SideCode, timeout_s: float = MICRO_TIMEOUT_S) -> Figures:
    """One fresh process of ``side`` running every case; RunError when it fails, times out
    or prints no figures."""
    cmd = [str(side.python), str(MICRO_SCRIPT)]
    try:
        done = subprocess.run(
            cmd,
            cwd=side.code_root,
            env={**os.environ, **side.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunError(f"{MICRO_SCRIPT.name} took more than {timeout_s:g} s") from exc
    except OSError as exc:
        raise RunError(f"{MICRO_SCRIPT.name} could not start with {side.python}: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.strip()[-MAX_STDERR:]
        raise RunError(f"{MICRO_SCRIPT.name} exited with status {done.returncode}: {tail}")
    return _figures(done.stdout)


def _figures(stdout: str) -> Figures:
    """The script's JSON object, checked: every value a positive number of seconds or null."""
    try:
        data = json.loads(stdout)
    except ValueError as exc:
        raise RunError(f"{MICRO_SCRIPT.name} printed no JSON object: {stdout[:200]!r}") from exc
    if not isinstance(data, dict) or not data:
        raise RunError(f"{MICRO_SCRIPT.name} printed {stdout[:200]!r}, not an object of cases")
    out: Figures = {}
    for case, value in data.items():
        seconds = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (seconds and math.isfinite(value) and value > 0):
            raise RunError(f"{MICRO_SCRIPT.name}: case {case} = {value!r}, not seconds per call")
        out[str(case)] = None if value is None else float(value)
    return out


def round_order(seed: int, rounds: int) -> tuple[tuple[Side, Side], ...]:
    """Each round's order of the sides: the seed picks round 0's, then they alternate."""
    start = random.Random(f"perfci-micro-{seed}").randrange(2)
    orders: list[tuple[Side, Side]] = []
    for i in range(rounds):
        first = SIDES[(start + i) % 2]
        orders.append((first, SIDES[1 - SIDES.index(first)]))
    return tuple(orders)


def round_hash_seeds(seed: int, rounds: int) -> tuple[int, ...]:
    """Each round's ``PYTHONHASHSEED`` for both sides' processes, drawn from the run's seed
    (1 .. 2^32 - 1: 0 would switch hash randomisation off)."""
    rng = random.Random(f"perfci-micro-hash-{seed}")
    return tuple(rng.randrange(1, 2**32) for _ in range(rounds))


def _one_round(
    sides: Mapping[Side, SideCode], order: tuple[Side, Side], hash_seed: int
) -> dict[Side, Figures]:
    """Both sides' processes in ``order``, with ``hash_seed``; a failure is the side's, or
    the harness's when both fail."""
    found: dict[Side, Figures] = {}
    failed: dict[Side, RunError] = {}
    for side in order:
        seeded = replace(sides[side], env={**sides[side].env, "PYTHONHASHSEED": str(hash_seed)})
        try:
            found[side] = run_cases(seeded)
        except RunError as exc:
            failed[side] = exc
    if len(failed) == len(order):
        raise RunError(
            "the micro-benchmarks failed on both sides (the harness's script, or what both "
            "sides share, is at fault): "
            + "; ".join(f"{side}: {exc}" for side, exc in failed.items())
        )
    if failed:
        ((side, error),) = failed.items()
        raise SideFailure(side, f"the micro-benchmarks: {error}") from error
    return found


def measure_micro(
    sides: Mapping[Side, SideCode], rounds: int, seed: int, progress: Progress = lambda _m: None
) -> MicroRun:
    """``rounds`` rounds of the cases on both sides (see the module docstring)."""
    assert rounds >= 1, f"rounds must be >= 1, got {rounds}"
    progress(f"micro-benchmarks: {rounds} rounds, a fresh process per side in each")
    cases: tuple[str, ...] = ()
    measured: list[MicroRound] = []
    orders, hash_seeds = round_order(seed, rounds), round_hash_seeds(seed, rounds)
    for order, hash_seed in zip(orders, hash_seeds, strict=True):
        found = _one_round(sides, order, hash_seed)
        if not cases:
            cases = tuple(found[order[0]])
        for side in SIDES:
            if tuple(found[side]) != cases:
                raise RunError(
                    f"the micro-benchmarks gave the {side} cases {list(found[side])}, not "
                    f"{list(cases)}: one script runs both sides"
                )
        measured.append(
            MicroRound(
                first=order[0],
                hash_seed=hash_seed,
                base=tuple(found["base"].values()),
                candidate=tuple(found["candidate"].values()),
            )
        )
    missing = {
        side: [c for i, c in enumerate(cases) if measured[0].side(side)[i] is None]
        for side in SIDES
    }
    for side, names in missing.items():
        if names:
            progress(f"micro-benchmarks: the {side}'s code lacks {', '.join(names)}")
    return MicroRun(cases=cases, rounds=tuple(measured))
