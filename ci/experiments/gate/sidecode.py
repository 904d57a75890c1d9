"""One side's code as the gate runs it outside its measured service.

The recall check's short-lived services (:mod:`~ci.experiments.gate.quality`) and the
micro-benchmarks' processes (:mod:`~ci.experiments.gate.micro`) run a side's own code: from its
worktree, by its venv's interpreter, with its measured service's settings, so that they
measure the code the windows measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ci.experiments.gate.checkout import SideCheckout
from ci.results.duet import SidePlacement


@dataclass(frozen=True, slots=True)
class SideCode:
    """How one side's code runs: its venv's python, its worktree, its environment (added to
    the harness's own)."""

    python: Path
    code_root: Path
    env: Mapping[str, str]


def side_code(
    checkout: SideCheckout,
    python: Path,
    embedder: str,
    service_env: Mapping[str, str],
    placement: SidePlacement,
) -> SideCode:
    """A side's code with its measured service's settings: the gate's ``embedder``, the
    side's extra ``service_env`` and the ``PYTHONHASHSEED`` its ``placement`` dealt it."""
    env = {"SEARCH_EMBEDDER": embedder, **service_env, "PYTHONHASHSEED": placement.hash_seed}
    return SideCode(python, checkout.worktree, env)
