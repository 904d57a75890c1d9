"""``perfci ab``, ``baseline`` and ``chaos``: experiments over whole runs (``calibrate`` is
the gate's: ``ci.cli.gate``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    add_scenario_option,
    positive_int,
    progress,
    timestamped,
)
from ci.experiments.ab import run_ab
from ci.experiments.baseline import refresh_baseline
from ci.experiments.chaos import EXPERIMENTS
from ci.experiments.chaos_load import DRIVERS
from ci.experiments.pairs import repo_root
from ci.settings import load_perf_config

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_ab(args: argparse.Namespace) -> int:
    config = load_perf_config(args.config)
    repo = repo_root(Path.cwd())
    out_dir = args.out or timestamped("ab")
    outcome = run_ab(
        repo,
        args.base,
        args.candidate,
        args.pairs,
        args.profile,
        out_dir,
        config,
        seed=args.seed,
        scenarios=_scenarios(args),
        progress=progress,
    )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(outcome.summary + "\n")
    print(outcome.judgement.headline)
    print(f"report: {out_dir / 'report.html'}")
    return outcome.judgement.exit_code


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


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    from ci.measure.profiles import check_scenarios

    return check_scenarios(tuple(args.scenario)) if args.scenario else ()


def register(sub: Subparsers) -> None:
    """``ab``, ``baseline`` and ``chaos``."""
    p = sub.add_parser("ab", help="A/B two revisions in interleaved pairs on this machine")
    p.add_argument("--base", required=True, help="git ref of the base revision")
    p.add_argument("--candidate", default="HEAD", help="git ref of the candidate (HEAD)")
    p.add_argument("--pairs", type=positive_int, default=5, help="A/B pairs (default 5)")
    p.add_argument("--profile", default="smoke", help="load profile (default smoke)")
    p.add_argument("--seed", type=int, help="seed of the run order and the bootstrap")
    p.add_argument("--out", type=Path, help="report folder (default reports/ab-<time>)")
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    add_scenario_option(p)
    p.set_defaults(handler=cmd_ab)

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
