"""``perfci baseline`` and ``chaos``: experiments over whole runs (``calibrate`` is the
gate's: ``ci.cli.gate``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import EXIT_FAIL, EXIT_OK, progress, timestamped
from ci.experiments.baseline import refresh_baseline
from ci.experiments.chaos import EXPERIMENTS
from ci.experiments.chaos_load import DRIVERS
from ci.experiments.worktrees import repo_root

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_baseline(args: argparse.Namespace) -> int:
    outcome = refresh_baseline(repo_root(Path.cwd()), args.profile, args.out, progress=progress)
    if outcome.archived is not None:
        progress(f"previous baseline kept as {outcome.archived}")
    meta = outcome.results.run
    print(f"baseline: {outcome.installed} (commit {meta.git_commit}, {meta.created_at})")
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    from ci.experiments.chaos import EXPERIMENTS, ChaosConfig, run_chaos
    from ci.render.chaos import chaos_table

    out = args.out or timestamped("chaos")
    cfg = ChaosConfig(
        out_dir=out,
        experiments=tuple(args.experiment or EXPERIMENTS),
        rate=args.rate,
        duration_s=args.duration,
        driver=args.driver,
    )
    outcomes = run_chaos(cfg, progress=lambda m: print(m, flush=True))
    print(chaos_table(cfg, outcomes), end="")
    print(f"figures: {out / 'chaos.json'}, {out / 'chaos.md'}")
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAIL


def register(sub: Subparsers) -> None:
    """``baseline`` and ``chaos``."""
    p = sub.add_parser("baseline", help="run this checkout and install it as the baseline")
    p.add_argument("--profile", default="smoke", help="load profile (default smoke)")
    p.add_argument("--out", type=Path, default=Path("reports/baseline"), help="baseline folder")
    p.set_defaults(handler=cmd_baseline)

    p = sub.add_parser("chaos", help="inject faults into a stack of its own under steady load")
    p.add_argument(
        "--experiment", action="append", choices=EXPERIMENTS, help="repeatable (default all)"
    )
    p.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per experiment (10)")
    p.add_argument("--driver", choices=sorted(DRIVERS), default="k6", help="load generator")
    p.add_argument("--out", type=Path, help="folder (default reports/chaos-<time>)")
    p.set_defaults(handler=cmd_chaos)
