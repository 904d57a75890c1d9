"""The gate's micro-benchmarks as measured: per round, each side's seconds per call of each case.

Measured by ``ci.experiments.gate.micro`` after the recall check (each round one fresh
process per side runs ``ci/experiments/gate/micro_cases.py``); stored in ``verdict.json``
(:class:`ci.judge.gate_verdict.GateVerdict`) so that ``perfci gate --rejudge`` and the
poster judge the same figures again (``ci.judge.micro``).
"""

from __future__ import annotations

import math

import msgspec

from ci.results.duet import Side


class MicroRound(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One round: each side's process once, ``first`` before the other."""

    first: Side
    # PYTHONHASHSEED of both sides' processes in this round (None: an older verdict)
    hash_seed: int | None = None
    # seconds per call of each case, in MicroRun.cases order (None: missing on that side:
    # its code lacks the case's functions)
    base: tuple[float | None, ...]
    candidate: tuple[float | None, ...]

    def side(self, name: Side) -> tuple[float | None, ...]:
        return self.base if name == "base" else self.candidate


class MicroRun(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every round of the micro-benchmark stage, the cases named once."""

    cases: tuple[str, ...]
    rounds: tuple[MicroRound, ...]

    def __post_init__(self) -> None:
        if not self.cases or len(set(self.cases)) != len(self.cases):
            raise ValueError(f"cases = {list(self.cases)}: must be distinct and not empty")
        if not self.rounds:
            raise ValueError("rounds: a micro-benchmark run has at least one round")
        for i, r in enumerate(self.rounds):
            for name in ("base", "candidate"):
                values = getattr(r, name)
                if len(values) != len(self.cases):
                    raise ValueError(
                        f"rounds[{i}].{name} has {len(values)} figures for {len(self.cases)} cases"
                    )
                for case, x in zip(self.cases, values, strict=True):
                    if x is not None and not (math.isfinite(x) and x > 0):
                        raise ValueError(f"rounds[{i}].{name} {case} = {x!r}: must be > 0 s")

    def figures(self, case: str, side: Side) -> tuple[float | None, ...]:
        """One side's seconds per call of ``case``, round by round."""
        at = self.cases.index(case)
        return tuple(r.side(side)[at] for r in self.rounds)
