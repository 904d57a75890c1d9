"""``perfci run``, ``perfci vegeta-targets``, and the commands that read a run folder:
``perfci report`` (render it again) and ``perfci diff`` (it against the stored baseline)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    add_stack_options,
    progress,
    stack_settings,
    with_time_scale,
)
from ci.errors import ResultsError, RunError

DIFF = "diff.md"

if TYPE_CHECKING:
    from ci.cli.common import Subparsers
    from ci.measure.run import Progress, RunOutcome, RunRequest


def cmd_run(args: argparse.Namespace) -> int:
    from ci.measure.profiles import check_scenarios, get_profile
    from ci.measure.run import RunRequest, dry_run
    from ci.render.tables_run import summary_table
    from ci.settings import load_perf_config

    profile = with_time_scale(get_profile(args.profile), args.time_scale)
    if args.embedder is not None:
        profile = dataclasses.replace(profile, embedder=args.embedder)
    sla = load_perf_config(args.config).sla
    scenarios = check_scenarios(tuple(args.scenario)) if args.scenario else profile.scenarios
    if args.runners < 1:
        raise RunError(f"--runners {args.runners}: at least 1")
    if args.k6_operator and not args.target:
        raise RunError("--k6-operator needs --target: the service's URL as the cluster reaches it")
    request = RunRequest(
        profile=profile,
        scenarios=scenarios,
        out_dir=args.out,
        stack=stack_settings(args),
        target=args.target,
        rss_slope_mb_per_10min=sla.rss_slope_mb_per_10min,
        sla=sla,
        profile_cpu=args.profile_cpu,
        profile_memory=args.profile_memory,
        runners=args.runners,
        k6_operator=args.namespace if args.k6_operator else None,
    )
    if args.dry_run:
        print(dry_run(request, progress))
        return EXIT_OK
    outcome = execute_and_render(request, progress)
    print(summary_table(outcome.results, outcome.peak_connections))
    print(f"results: {outcome.run_dir / 'results.json'}")
    print(f"report: {outcome.run_dir / 'report.html'}")
    leaking = [s.name for s in outcome.results.scenarios if s.memory and s.memory.leaking]
    if leaking:
        print(f"MEMORY: RSS keeps growing in {', '.join(leaking)}", file=sys.stderr)
    if outcome.failed:
        for scenario, t in outcome.failed:
            print(f"FAILED: {scenario}: {t.metric} {t.expression}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def execute_and_render(request: RunRequest, progress: Progress) -> RunOutcome:
    """``perfci run``: measure into ``results.json``, then render the report from the folder."""
    # Imported before the run, not after an hour of load: a run then renders with the code it
    # started with even if the checkout changes meanwhile.
    from ci.measure.run import execute
    from ci.render.report import rerender_run

    outcome = execute(request, progress)
    rerender_run(outcome.run_dir)
    return outcome


def cmd_vegeta_targets(args: argparse.Namespace) -> int:
    from ci.measure.vegeta_targets import create_scratch, scratch_needed, write_json_targets

    # writes: DELETE targets need documents that exist, made now on the running service
    scratch = create_scratch(args.base_url, scratch_needed(args.count, args.write_fraction))
    path = write_json_targets(
        args.query_log, args.base_url, args.out, args.count, args.seed,
        write_fraction=args.write_fraction, scratch_ids=scratch,
    )  # fmt: skip
    lines = len(path.read_text().splitlines())
    progress(
        f"wrote {lines} vegeta JSON targets to {path} ({args.count} searches, "
        f"{(lines - args.count) // 2} ingest + delete pairs, {len(scratch)} scratch documents)"
    )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    from ci.measure.profiles import PROFILES, SCENARIO_SCRIPTS

    p = sub.add_parser("run", help="run a load profile (k6, vegeta) and write results.json")
    add_stack_options(p)
    p.add_argument("--profile", required=True, choices=list(PROFILES), help="load profile")
    p.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIO_SCRIPTS)}",
    )
    p.add_argument("--target", help="URL of a running service: start no stack")
    p.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    p.add_argument("--config", type=Path, help="perf.toml ([sla]; default: the repository's)")
    p.add_argument(
        "--time-scale", type=float, help="override the profile's TIME_SCALE (1.0 = full length)"
    )
    p.add_argument("--embedder", choices=["minilm", "hash"], help="override the profile's embedder")
    p.add_argument(
        "--profile-cpu", action="store_true", help="py-spy flame graph + speedscope per worker"
    )
    p.add_argument(
        "--profile-memory",
        action="store_true",
        help="tracemalloc growth from warm-up to the end (admin routes; sets SEARCH_ADMIN_TOKEN)",
    )
    p.add_argument(
        "--runners",
        type=int,
        default=1,
        metavar="N",
        help="split each k6 scenario over N runners (execution segments), merged exactly",
    )
    p.add_argument(
        "--k6-operator",
        action="store_true",
        help="run the N runners as a k6-operator TestRun (kubectl; needs --target)",
    )
    p.add_argument("--namespace", default="default", help="--k6-operator: the Kubernetes namespace")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print each runner's k6 command (or the k6-operator manifests) and run nothing",
    )
    p.set_defaults(handler=cmd_run)

    v = sub.add_parser("vegeta-targets", help="vegeta JSON targets from the query log")
    v.add_argument("--query-log", type=Path, required=True, help="querylog.json of `seed`")
    v.add_argument("--base-url", default="http://127.0.0.1:8000", help="service URL")
    v.add_argument("--out", type=Path, required=True, help="targets file (JSON lines)")
    v.add_argument("--count", type=int, default=1000, help="searches (default 1000)")
    v.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    v.add_argument(
        "--write-fraction",
        type=float,
        default=0.0,
        help="searches followed by an ingest + a delete (default 0; > 0 makes scratch "
        "documents on --base-url for the deletes)",
    )
    v.set_defaults(handler=cmd_vegeta_targets)


def cmd_report(args: argparse.Namespace) -> int:
    from ci.render.report import rerender_run

    path = rerender_run(args.run_dir)
    progress(f"report written to {path}")
    print(f"report: {path}")
    return EXIT_OK


def _run_results(path: Path) -> Path:
    """A results file, a run folder, or a folder holding one run folder (``perfci run --out``)."""
    from ci.experiments.worktrees import find_results

    if path.is_file():
        return path
    if not path.is_dir():
        raise ResultsError(f"{path}: no such file or folder")
    found = find_results(path)
    if found is None:
        raise ResultsError(f"{path}: no results.json (expected a run folder of `perfci run`)")
    return found


def cmd_diff(args: argparse.Namespace) -> int:
    from ci.judge.diff import diff_runs
    from ci.render.diff import render_diff
    from ci.results import load_results

    base = load_results(_run_results(args.base))
    candidate_path = _run_results(args.candidate)
    text = render_diff(diff_runs(base, load_results(candidate_path)))
    out = args.out if args.out is not None else candidate_path.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / DIFF).write_text(text, encoding="utf-8")
    print(text, end="")
    progress(f"written to {out / DIFF}")
    return EXIT_OK


def register_report(sub: Subparsers) -> None:
    """``report`` and ``diff``: commands that read finished run folders."""
    p = sub.add_parser("report", help="render a finished run's report.html again from its folder")
    p.add_argument("run_dir", type=Path, metavar="DIR", help="a run folder (holds results.json)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "diff", help="a run against the stored baseline: the plain difference, no verdict"
    )
    p.add_argument("base", type=Path, metavar="BASE", help="the baseline's results.json")
    p.add_argument("candidate", type=Path, metavar="RUN", help="a run folder or its results.json")
    p.add_argument("--out", type=Path, help=f"write {DIFF} here (default: the run folder)")
    p.set_defaults(handler=cmd_diff)
