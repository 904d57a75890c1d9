"""Flame graphs of both sides during the measured windows, kept when the gate fails.

Each side's service workers are sampled by py-spy from the first window to the last
(``--nonblocking``: the service is never paused, so the sampling costs the machine a little
CPU and the sides nothing each other does not pay too), at ``RATE`` samples per second, into
the report folder's ``profiles/`` (:class:`~ci.judge.gate_folder.GateFolder`): the
collapsed stacks of each worker process (``<side>.cpu.<pid>.txt``, ``--format raw``). When
the verdict is a FAIL, three graphs are drawn from them (:mod:`ci.render.flame`): each
side's, merged over every process that served it across the restarts (``base.svg``,
``candidate.svg``), and the candidate against the base (``flame-diff.svg``); the verdict
lists the three for the comment. Otherwise ``profiles/`` is removed. A profiler that cannot
attach (no ptrace permission, say) costs the flame graphs, never the verdict.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ci.errors import RunError
from ci.judge.gate_folder import GateFolder
from ci.measure.diagnose import CpuProfiler, ProfileFile, find_py_spy, service_workers
from ci.render.flame import differential_svg, flame_svg, parse_collapsed

RATE = 25  # samples per second per recorder: ~7,000 per side over a gate's windows
FORMATS = (("raw", "txt"),)  # collapsed stacks: the graphs are drawn from them
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Recorded:
    files: tuple[ProfileFile, ...]
    sides: Mapping[str, tuple[ProfileFile, ...]]


def start_profiles(
    pids: Mapping[str, int], folder: GateFolder, max_s: float, progress: Progress
) -> dict[str, CpuProfiler]:
    """A running py-spy per side, worker and format (none when py-spy is missing)."""
    binary = find_py_spy()
    if binary is None:
        progress("py-spy is not installed: no flame graphs")
        return {}
    folder.profiles.mkdir(parents=True, exist_ok=True)
    profilers = {}
    for side, pid in pids.items():
        try:
            workers = service_workers(pid)
        except RunError as exc:
            progress(f"no flame graph of the {side}: {exc}")
            continue
        profiler = CpuProfiler(binary, workers, folder.profiles, side, max_s, FORMATS, RATE)
        profiler.start()
        profilers[side] = profiler
    return profilers


def stop_profiles(profilers: Mapping[str, CpuProfiler], progress: Progress) -> Recorded:
    sides = {}
    for side, profiler in profilers.items():
        files, problems = profiler.stop()
        for problem in problems:
            progress(f"{side}: {problem}")
        sides[side] = tuple(files)
    return Recorded(tuple(f for fs in sides.values() for f in fs), sides)


class SideProfiles:
    """py-spy on each side's service through the windows, across restarts of the services:
    :meth:`stop` before a restart, :meth:`start` with the new PIDs after it."""

    def __init__(self, folder: GateFolder, max_s: float, progress: Progress) -> None:
        self._folder, self._max_s, self._progress = folder, max_s, progress
        self._running: dict[str, CpuProfiler] = {}
        self._parts: list[Recorded] = []

    def start(self, pids: Mapping[str, int]) -> None:
        self._running = start_profiles(pids, self._folder, self._max_s, self._progress)

    def stop(self) -> None:
        self._parts.append(stop_profiles(self._running, self._progress))
        self._running = {}

    def recorded(self) -> Recorded:
        """Every file recorded so far, per side in the order recorded."""
        sides: dict[str, tuple[ProfileFile, ...]] = {}
        for part in self._parts:
            for side, files in part.sides.items():
                sides[side] = (*sides.get(side, ()), *files)
        return Recorded(tuple(f for fs in sides.values() for f in fs), sides)


def keep_flames(folder: GateFolder, recorded: Recorded, failed: bool) -> tuple[str, ...]:
    """On a FAIL: each side's graph and the differential one, their paths in the folder;
    else none (and no ``profiles/``)."""
    complete = all(
        any(f.kind == "raw" for f in recorded.sides.get(side, ())) for side in ("base", "candidate")
    )
    if not failed or not complete:
        shutil.rmtree(folder.profiles, ignore_errors=True)
        return ()
    stacks = {}
    for side in ("base", "candidate"):
        lines: list[str] = []
        for f in recorded.sides[side]:
            if f.kind == "raw":
                lines += f.path.read_text(encoding="utf-8", errors="replace").splitlines()
        stacks[side] = parse_collapsed(lines)
    graphs = {folder.profiles / f"{side}.svg": flame_svg(stacks[side], side) for side in stacks}
    graphs[folder.flame_diff] = differential_svg(stacks["base"], stacks["candidate"])
    for path, svg in graphs.items():
        path.write_text(svg, encoding="utf-8")
    return tuple(p.relative_to(folder.root).as_posix() for p in graphs)
