"""``perfci sweep index|pool|workers`` (and ``capacity``, in :mod:`ci.cli.capacity`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ci import stack
from ci.cli.common import (
    EXIT_OK,
    add_stack_options,
    ints,
    progress,
    stack_settings,
    with_time_scale,
)
from ci.errors import StackError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_sweep_index(args: argparse.Namespace) -> int:
    from ci.experiments.sweep_index import IndexVariant, sweep_index, write_outputs
    from ci.render.sweep import index_table

    settings = stack_settings(args)
    state = stack.load_state(settings.run_dir)
    database_url = settings.database_url or (state.database_url if state else None)
    if database_url is None:
        raise StackError(f"no running stack in {settings.run_dir} and DATABASE_URL is not set")
    types = ["vector", "halfvec"] if args.vector_type == "both" else [args.vector_type]
    variants = []
    for vt in types:
        variants += [
            IndexVariant("hnsw", vt, m=m, ef_construction=e)
            for m in args.m
            for e in args.ef_construction
        ]
        variants += [IndexVariant("ivfflat", vt, lists=n) for n in args.lists]
    points = sweep_index(
        database_url,
        variants,
        {"hnsw": args.ef_search, "ivfflat": args.probes},
        queries=args.queries,
        concurrency=args.concurrency,
        drop_existing=args.drop_existing,
        progress=progress,
    )
    print(index_table(points, args.concurrency))
    if args.out is not None:
        write_outputs(args.out, points, args.concurrency)
        progress(f"table, JSON and recall-vs-QPS plot written to {args.out}")
    return EXIT_OK


def cmd_sweep_load(args: argparse.Namespace) -> int:
    from ci.cli.run import execute_and_render
    from ci.experiments.sweep_load import KNOBS, recommend, summarise, sweep, write_outputs
    from ci.measure.profiles import check_scenarios, get_profile
    from ci.measure.run import RunRequest
    from ci.render.sweep import load_table
    from ci.settings import load_perf_config

    knob = KNOBS[args.sweep_command]
    sla = load_perf_config(args.config).sla
    profile = with_time_scale(get_profile(args.profile), args.time_scale)
    out = args.out or Path("reports") / f"sweep-{knob.name}"
    request = RunRequest(
        profile=profile,
        scenarios=check_scenarios(tuple(args.scenario or ["saturate"])),
        out_dir=(out / "runs").resolve(),
        stack=stack_settings(args),
        rss_slope_mb_per_10min=sla.rss_slope_mb_per_10min,
        sla=sla,
    )
    points = sweep(
        knob,
        args.values,
        request,
        args.repeat,
        progress,
        execute=execute_and_render,
        seed=args.seed,
    )
    rows = summarise(points, args.values, sla)
    print(load_table(rows, knob))
    for scenario in dict.fromkeys(r.scenario for r in rows):
        best = recommend(rows, scenario)
        choice = "none meets the SLA" if best is None else f"{knob.label} {best}"
        print(f"{scenario}: smallest value within 3 % of the best throughput at the SLA: {choice}")
    write_outputs(out, knob, rows, points)
    progress(f"table, JSON and plot written to {out}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    from ci.measure.profiles import PROFILES, SCENARIO_SCRIPTS

    p = sub.add_parser("sweep", help="parameter sweeps (index, pool, workers, capacity)")
    sweep_sub = p.add_subparsers(dest="sweep_command", required=True)
    q = sweep_sub.add_parser("index", help="recall@10 vs latency/QPS per ANN index setting")
    add_stack_options(q)
    q.add_argument("--ef-search", type=ints, default=[10, 20, 40, 80, 160])
    q.add_argument("--probes", type=ints, default=[1, 2, 5, 10, 20])
    q.add_argument("--m", type=ints, default=[16], help="HNSW m values (comma-separated)")
    q.add_argument("--ef-construction", type=ints, default=[64])
    q.add_argument("--lists", type=ints, default=[100], help="IVFFlat lists values")
    q.add_argument("--vector-type", choices=["vector", "halfvec", "both"], default="vector")
    q.add_argument("--queries", type=int, default=200)
    q.add_argument("--concurrency", type=ints, default=[1, 4, 8])
    q.add_argument("--out", type=Path, help="write the table, JSON and plot here")
    q.add_argument(
        "--drop-existing",
        action="store_true",
        help="drop the service's ANN indexes first (the planner must use the swept one)",
    )
    q.set_defaults(handler=cmd_sweep_index)
    for name, helptext, default in (
        ("pool", "database pool size vs throughput and p95 under load", [5, 10, 20, 40]),
        ("workers", "throughput at the SLA per number of service workers", [1, 2]),
    ):
        w = sweep_sub.add_parser(name, help=helptext)
        add_stack_options(w)
        w.add_argument(
            "--values", type=ints, default=default, help=f"comma-separated (default {default})"
        )
        w.add_argument("--profile", default="pr", choices=list(PROFILES), help="default pr")
        w.add_argument(
            "--scenario",
            action="append",
            metavar="NAME",
            help=f"repeatable (default saturate): {', '.join(SCENARIO_SCRIPTS)}",
        )
        w.add_argument("--repeat", type=int, default=1, help="rounds over all values (default 1)")
        w.add_argument("--seed", type=int, help="seed of the shuffled order of values")
        w.add_argument("--time-scale", type=float, help="override the profile's TIME_SCALE")
        w.add_argument("--config", type=Path, help="perf.toml ([sla]; default: the repository's)")
        w.add_argument("--out", type=Path, help=f"default reports/sweep-{name}")
        w.set_defaults(handler=cmd_sweep_load)
    from ci.cli import capacity

    capacity.register(sweep_sub)
