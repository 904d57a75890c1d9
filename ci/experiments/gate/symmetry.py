"""Symmetric sides: everything that sets two services apart, other than their code, is dealt.

Two identical services measured side by side differ by a percent or so (measured A/A), and
whatever sets them apart (a port, a path's length, which one started first) may be why. A
difference that the label decided would show up in every window, as an effect of the code.
So each such property is either dealt from the run's seed or made equal:

================  =========================================================================
property          how the sides get it
================  =========================================================================
slot name         dealt: ``side1``, ``side2`` (one length): each side's worktree, run folder
                  (logs, Prometheus files, Valkey data) and database (``gate_side1``), so
                  every path, URL and environment string of the two sides is equally long
service port      drawn for all sides first (all with the same number of digits), then dealt
Valkey port       the same, for each side's own Valkey server
start position    dealt: the order in which the loaders run and the services start
PYTHONHASHSEED    equal: :data:`HASH_SEED` for every side's loader, service and exact-scan
                  service
CPUs              ``gate.pin_cpus``: dealt, each side's service and Valkey (every thread, and
                  the processes they start) pinned to its own quarter of the CPUs;
                  PostgreSQL, k6 and the harness stay unpinned. Off by default, refused on
                  a machine with fewer than 4 CPUs
================  =========================================================================

Each property is an independent shuffle from the seed alone, over the sides in a fixed
order: what a side gets never depends on its label or its revision, and the same seed deals
the same way whichever revision is the base. The deal is recorded in ``windows.json``
(:class:`~ci.results.duet.SidePlacement`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from ci.errors import ConfigError, StackError
from ci.results.duet import SidePlacement
from ci.stack import free_port

#: ``PYTHONHASHSEED`` of every side (a random one per process would be one more difference).
HASH_SEED = "0"
#: The properties dealt per side, each by its own shuffle.
DEALT = ("slot", "start", "port", "valkey", "cpus")
PORT_DRAWS = 200  # attempts to draw distinct free ports of one length


def slot_name(position: int) -> str:
    """The neutral name of the slot at ``position`` (one length for up to nine sides)."""
    return f"side{position + 1}"


@dataclass(frozen=True, slots=True)
class Deal:
    """One run's deal: per property, the position (0-based) that each label got."""

    seed: int
    labels: tuple[str, ...]
    positions: Mapping[str, Mapping[str, int]]  # property -> label -> position
    cpu_sets: tuple[tuple[int, ...], ...] | None = None  # None: nothing pinned

    def slot(self, label: str) -> str:
        """The side's neutral name (its worktree, run folder and database)."""
        return slot_name(self.positions["slot"][label])

    @property
    def start_order(self) -> tuple[str, ...]:
        return tuple(sorted(self.labels, key=lambda label: self.positions["start"][label]))

    def cpus(self, label: str) -> tuple[int, ...] | None:
        if self.cpu_sets is None:
            return None
        return self.cpu_sets[self.positions["cpus"][label]]

    def place(self, label: str, ports: Sequence[int], valkey_ports: Sequence[int]) -> SidePlacement:
        """What ``label`` gets, given the ports drawn for all sides (each list sorted)."""
        at = self.positions
        return SidePlacement(
            slot=self.slot(label),
            port=ports[at["port"][label]],
            valkey_port=valkey_ports[at["valkey"][label]],
            start=at["start"][label],
            hash_seed=HASH_SEED,
            cpus=self.cpus(label),
        )


def deal_sides(
    labels: Sequence[str], seed: int, *, pin_cpus: bool = False, cpus: Sequence[int] | None = None
) -> Deal:
    """Deal every property of :data:`DEALT` to ``labels`` from ``seed`` alone; ``cpus``: those
    to pin to (default: the ones this process may run on)."""
    assert len(set(labels)) == len(labels) > 0, f"labels must be distinct: {labels}"
    rng = random.Random(f"perfci-sides-{seed}")
    n = len(labels)
    positions = {p: dict(zip(labels, rng.sample(range(n), n), strict=True)) for p in DEALT}
    cpu_sets = None
    if pin_cpus:
        usable = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        each = len(usable) // (2 * n)  # a quarter each for two sides
        if each < 1:
            raise ConfigError(
                f"gate.pin_cpus = true needs {2 * n} or more CPUs for {n} sides (a share "
                f"each, and as much again for PostgreSQL and k6); this machine has "
                f"{len(usable)}: set pin_cpus = false in perf.toml [gate]"
            )
        cpu_sets = tuple(tuple(usable[i * each : (i + 1) * each]) for i in range(n))
    return Deal(seed, tuple(labels), positions, cpu_sets)


def draw_ports(n: int) -> tuple[int, ...]:
    """``n`` distinct free ports with the same number of digits, sorted."""
    found: dict[int, set[int]] = {}
    for _ in range(PORT_DRAWS):
        port = free_port()
        same = found.setdefault(len(str(port)), set())
        same.add(port)
        if len(same) == n:
            return tuple(sorted(same))
    raise StackError(f"no {n} distinct free ports of one length in {PORT_DRAWS} draws")


def pin(pid: int, cpus: Sequence[int] | None) -> None:
    """Pin every thread of ``pid`` and of its descendants to ``cpus`` (None: leave them);
    processes and threads they start later inherit it."""
    if cpus is None:
        return
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
        for proc in family:
            for thread in proc.threads():
                os.sched_setaffinity(thread.id, cpus)
    except (psutil.Error, OSError) as exc:
        raise StackError(f"cannot pin process {pid} to CPUs {list(cpus)}: {exc}") from exc
