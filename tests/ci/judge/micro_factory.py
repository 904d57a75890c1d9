"""Micro-benchmark runs for tests: per round, each side's seconds per call drawn around a change."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ci.results.micro import MicroRound, MicroRun

#: Seconds per call of each case on the base, about what the service's own code takes here.
BASE_SECONDS = {
    "search_response": 5.3e-6,
    "stream_frame": 9.6e-6,
    "cache_round_trip": 8.1e-6,
    "parse_search": 2.3e-6,
}


def micro_run(
    change: float | Mapping[str, float] = 0.0,
    *,
    rounds: int = 12,
    sd: float = 0.03,
    seed: int = 1,
    base: Mapping[str, float] = BASE_SECONDS,
    missing: Mapping[str, str] | None = None,
) -> MicroRun:
    """``rounds`` rounds: each side's figure of each case is ``base`` (the candidate's
    ``change`` slower: one for every case, or per case) times a process's lognormal offset
    of ``sd``; ``missing`` maps a case to the side whose code lacks it."""
    rng = np.random.default_rng(seed)
    cases = tuple(base)
    changes = {c: change.get(c, 0.0) if isinstance(change, Mapping) else change for c in cases}
    lacking = missing or {}
    out = []
    for i in range(rounds):
        figures: dict[str, list[float | None]] = {"base": [], "candidate": []}
        for case in cases:
            for side, factor in (("base", 1.0), ("candidate", 1.0 + changes[case])):
                value = base[case] * factor * float(np.exp(rng.normal(0.0, sd)))
                figures[side].append(None if lacking.get(case) == side else value)
        out.append(
            MicroRound(
                first="base" if i % 2 == 0 else "candidate",
                base=tuple(figures["base"]),
                candidate=tuple(figures["candidate"]),
            )
        )
    return MicroRun(cases=cases, rounds=tuple(out))
