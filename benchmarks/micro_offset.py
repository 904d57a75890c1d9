"""Whether the gate's micro-benchmark cases read a lasting offset between two checkouts of one
commit, with a fixed ``PYTHONHASHSEED`` and with a new one each round.

The gate's micro-benchmark stage (``ci/experiments/gate/micro.py``) times each side's code in
fresh processes and pairs them by round. Its test is exact only if nothing but the code
differs between the sides. This puts two detached worktrees of HEAD at paths of one length
(``…/x/side1``, ``…/y/side2``), runs the cases in each, alternating which goes first, and
prints per case the log ratio side2/side1 of each round: first with the services' fixed
seed 0, then with a new seed per round shared by both (what the stage does).

    python -m benchmarks.micro_offset --rounds 8

Run it on an otherwise idle machine. The worktrees are removed afterwards.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ci.experiments.gate.micro import run_cases
from ci.experiments.gate.sidecode import SideCode


def ratios(roots: tuple[Path, Path], seeds: list[str]) -> dict[str, list[float]]:
    """Per case, log(side2 / side1) of each round; the first side alternates."""
    out: dict[str, list[float]] = {}
    for i, seed in enumerate(seeds):
        order = roots if i % 2 == 0 else roots[::-1]
        got = {
            r: run_cases(SideCode(Path(sys.executable), r, {"PYTHONHASHSEED": seed})) for r in order
        }
        for case, first in got[roots[0]].items():
            second = got[roots[1]][case]
            if first and second:
                out.setdefault(case, []).append(math.log(second / first))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds per seeding (default 8)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be at least 1")
    repo = Path(__file__).resolve().parents[1]
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        roots = (Path(tmp) / "x" / "side1", Path(tmp) / "y" / "side2")
        for root in roots:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(root), "HEAD"],
                check=True,
            )
        try:
            for label, seeds in (
                ("seed 0", ["0"] * args.rounds),
                ("per round", [str(rng.randrange(1, 2**32)) for _ in range(args.rounds)]),
            ):
                for case, xs in ratios(roots, seeds).items():
                    logs = " ".join(f"{x:+.2f}" for x in xs)
                    print(f"{label:9s} {case:17s} {logs}  median {statistics.median(xs):+.2f}")
        finally:
            for root in roots:
                subprocess.run(
                    ["git", "-C", str(repo), "worktree", "remove", "--force", str(root)],
                    check=False,
                )


if __name__ == "__main__":
    main()
