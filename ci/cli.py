"""``perfci``: the pipeline's command line. Parsing, settings, exit codes, messages.

Exit codes: 0 pass (or warn), 1 a regression or an SLA failure, 2 a usage,
configuration or input error. Only this module prints ``error:``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from ci import ab as _ab
from ci import chaos as _chaos
from ci import stack
from ci.errors import ConfigError, PerfCIError, StackError
from ci.settings import StackSettings

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def _progress(message: str) -> None:
    print(f"perfci: {message}", file=sys.stderr, flush=True)


def _stack_settings(args: argparse.Namespace) -> StackSettings:
    settings = StackSettings.from_env()
    service_env = dict(settings.service_env)
    if getattr(args, "embedder", None):
        service_env["SEARCH_EMBEDDER"] = args.embedder
    if getattr(args, "index_mode", None):
        service_env["SEARCH_INDEX_MODE"] = args.index_mode
    return settings.with_overrides(
        run_dir=getattr(args, "run_dir", None),
        pg_port=getattr(args, "pg_port", None),
        redis_port=getattr(args, "redis_port", None),
        service_port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        server=getattr(args, "server", None),
        service_env=service_env,
    )


# ---------------------------------------------------------------------------- commands


def cmd_stack_up(args: argparse.Namespace) -> int:
    settings = _stack_settings(args)
    state = stack.up(settings, _progress)
    print(json.dumps(stack.status(Path(state.run_dir)), indent=2))
    return EXIT_OK


def cmd_stack_down(args: argparse.Namespace) -> int:
    settings = _stack_settings(args)
    state = stack.down(settings.run_dir)
    if state is None:
        _progress(f"no stack is running from {settings.run_dir}")
    else:
        _progress("stack stopped")
    return EXIT_OK


def cmd_stack_status(args: argparse.Namespace) -> int:
    settings = _stack_settings(args)
    info = stack.status(settings.run_dir)
    if args.json:
        print(json.dumps(info, indent=2))
    elif not info["running"] and "components" not in info:
        print(f"no stack recorded in {settings.run_dir}")
    else:
        for name, part in info["components"].items():
            where = "external" if part["external"] else f"pid {part['pid']}"
            state = "up" if part["alive"] else "DOWN"
            print(f"{name:9} {state:5} {where:12} {part['url']}")
    return EXIT_OK if info["running"] else EXIT_FAIL


def cmd_seed(args: argparse.Namespace) -> int:
    from ci.seed import seed_corpus

    settings = _stack_settings(args)
    state = stack.load_state(settings.run_dir)
    if state is None and not settings.database_url:
        raise StackError(
            f"no running stack in {settings.run_dir} and DATABASE_URL is not set: "
            "run `perfci stack up` first"
        )
    database_url = settings.database_url or (state.database_url if state else "")
    env = dict(state.service_env) if state else dict(settings.service_env)
    stack_embedder = env.get("SEARCH_EMBEDDER", "minilm")
    if args.embedder and state is not None and args.embedder != stack_embedder:
        raise StackError(
            f"--embedder {args.embedder} differs from the running service's embedder "
            f"{stack_embedder}: restart the stack with `perfci stack up --embedder {args.embedder}`"
        )
    if args.embedder:
        env["SEARCH_EMBEDDER"] = args.embedder
    result = seed_corpus(
        settings.run_dir,
        database_url,
        args.docs,
        args.seed,
        env,
        force=args.force,
        progress=_progress,
    )
    print(
        json.dumps(
            {
                "docs": result.docs,
                "seed": result.seed,
                "corpus": str(result.corpus_path),
                "query_log": str(result.query_log_path),
                "corpus_hash": result.corpus_hash,
                "loader": result.loader,
            },
            indent=2,
        )
    )
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from ci.config import load_perf_config
    from ci.render import RenderContext
    from ci.report import compare_benchmark_files, expand, is_benchmark_file, judge, write_report

    config = load_perf_config(args.config)
    base, candidate = expand(args.base), expand(args.candidate)
    if all(is_benchmark_file(p) for p in [*base, *candidate]):
        table, code = compare_benchmark_files(base, candidate, config, seed=args.seed)
        print(table)
        return code
    judgement = judge(base, candidate, config, seed=args.seed)
    context = RenderContext(base_ref=args.base_ref, head_ref=args.head_ref)
    if args.report is not None:
        files = write_report(args.report, judgement, context, base, candidate)
        _progress(f"report written to {files['html']}")
    from ci.render import render_summary

    print(render_summary(judgement.comparison, judgement.sla, context))
    print(judgement.headline)
    return judgement.exit_code


def cmd_comment(args: argparse.Namespace) -> int:
    import os

    from ci.config import load_perf_config
    from ci.post import post_comment
    from ci.render import RenderContext, render_comment
    from ci.report import judge, report_inputs

    if args.pr < 1:
        raise ConfigError(f"--pr {args.pr} is invalid: expected a pull-request number >= 1")
    if args.repo.count("/") != 1 or not all(args.repo.split("/")):
        raise ConfigError(f"--repo {args.repo!r} is invalid: expected OWNER/NAME")
    base, candidate = report_inputs(args.report)
    judgement = judge(base, candidate, load_perf_config(args.config))
    context = RenderContext(
        repository=args.repo,
        pr_number=args.pr,
        run_url=args.run_url,
        artifact_url=args.artifact_url,
    )
    body = render_comment(judgement.comparison, judgement.sla, context)
    if args.dry_run:
        print(body)
        return judgement.exit_code
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise ConfigError("GITHUB_TOKEN is not set (use --dry-run to print the comment)")
    state: Literal["success", "failure"] = "failure" if judgement.exit_code == 1 else "success"
    outcome = post_comment(
        args.repo,
        args.pr,
        body,
        token,
        api_url=args.api_url,
        sha=args.sha,
        state=state,
        description=judgement.headline,
        target_url=args.run_url,
    )
    verb = "created" if outcome.created else "updated"
    _progress(f"comment {verb}: {outcome.comment_url}; perf/gate {outcome.status_state}")
    return judgement.exit_code


def _register_judging(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="compare result sets (or pytest-benchmark files)")
    p.add_argument("base", type=Path, nargs="+", help="base results.json files or folders")
    p.add_argument(
        "--candidate",
        type=Path,
        nargs="+",
        required=True,
        help="candidate results.json files or folders",
    )
    p.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml")
    p.add_argument("--report", type=Path, help="write comment.md, summary.md, report.html here")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--base-ref", help="label for the base (branch or commit)")
    p.add_argument("--head-ref", help="label for the candidate")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("comment", help="post (or print) the PR comment and perf/gate status")
    p.add_argument("--repo", required=True, help="OWNER/NAME")
    p.add_argument("--pr", type=int, required=True, help="pull-request number")
    p.add_argument("--report", type=Path, required=True, help="folder from `compare --report`")
    p.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml")
    p.add_argument(
        "--api-url",
        default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)",
    )
    p.add_argument("--sha", help="commit for the status (default: the PR head)")
    p.add_argument("--run-url", help="link to the workflow run")
    p.add_argument("--artifact-url", help="link to the artifacts")
    p.add_argument("--dry-run", action="store_true", help="print the comment, post nothing")
    p.set_defaults(handler=cmd_comment)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return values


def cmd_sweep_index(args: argparse.Namespace) -> int:
    import asyncio

    from ci.sweep import IndexVariant, format_table, plot_png, points_as_json, sweep_index

    settings = _stack_settings(args)
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
    if args.drop_existing:
        from ci.sweep import drop_ann_indexes

        dropped = asyncio.run(drop_ann_indexes(database_url))
        _progress(f"dropped {', '.join(dropped) or 'no index'}; restart the service to rebuild")
    points = asyncio.run(
        sweep_index(
            database_url,
            variants,
            {"hnsw": args.ef_search, "ivfflat": args.probes},
            queries=args.queries,
            concurrency=args.concurrency,
            progress=_progress,
        )
    )
    table = format_table(points, args.concurrency)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sweep-index.txt").write_text(table + "\n")
        (args.out / "sweep-index.json").write_text(json.dumps(points_as_json(points), indent=2))
        (args.out / "sweep-index.png").write_bytes(plot_png(points, args.concurrency[-1]))
        _progress(f"table, JSON and recall-vs-QPS plot written to {args.out}")
    return EXIT_OK


def cmd_sweep_load(args: argparse.Namespace) -> int:
    import dataclasses

    from ci.config import load_perf_config
    from ci.measure.profiles import check_scenarios, get_profile
    from ci.measure.run import RunRequest, execute
    from ci.sweep_load import KNOBS, format_table, recommend, summarise, sweep, write_outputs

    knob = KNOBS[args.sweep_command]
    sla = load_perf_config(args.config).sla
    profile = get_profile(args.profile)
    if args.time_scale is not None:
        if not 0 < args.time_scale <= 10:
            raise ConfigError(f"--time-scale {args.time_scale}: expected a value in (0, 10]")
        profile = dataclasses.replace(profile, time_scale=args.time_scale)
    out = args.out or Path("reports") / f"sweep-{knob.name}"
    request = RunRequest(
        profile=profile,
        scenarios=check_scenarios(tuple(args.scenario or ["saturate"])),
        out_dir=(out / "runs").resolve(),
        stack=_stack_settings(args),
        rss_slope_mb_per_10min=sla.rss_slope_mb_per_10min,
    )
    points = sweep(
        knob, args.values, request, args.repeat, _progress, execute=execute, seed=args.seed
    )
    rows = summarise(points, args.values, sla)
    print(format_table(rows, knob))
    for scenario in dict.fromkeys(r.scenario for r in rows):
        best = recommend(rows, scenario)
        choice = "none meets the SLA" if best is None else f"{knob.label} {best}"
        print(f"{scenario}: smallest value within 3 % of the best throughput at the SLA: {choice}")
    write_outputs(out, knob, rows, points)
    _progress(f"table, JSON and plot written to {out}")
    return EXIT_OK


def _register_sweep(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ci.measure.profiles import PROFILES, SCENARIO_SCRIPTS

    p = sub.add_parser("sweep", help="parameter sweeps (index, pool, workers)")
    sweep_sub = p.add_subparsers(dest="sweep_command", required=True)
    q = sweep_sub.add_parser("index", help="recall@10 vs latency/QPS per ANN index setting")
    _add_stack_options(q)
    q.add_argument("--ef-search", type=_ints, default=[10, 20, 40, 80, 160])
    q.add_argument("--probes", type=_ints, default=[1, 2, 5, 10, 20])
    q.add_argument("--m", type=_ints, default=[16], help="HNSW m values (comma-separated)")
    q.add_argument("--ef-construction", type=_ints, default=[64])
    q.add_argument("--lists", type=_ints, default=[100], help="IVFFlat lists values")
    q.add_argument("--vector-type", choices=["vector", "halfvec", "both"], default="vector")
    q.add_argument("--queries", type=int, default=200)
    q.add_argument("--concurrency", type=_ints, default=[1, 4, 8])
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
        _add_stack_options(w)
        w.add_argument(
            "--values", type=_ints, default=default, help=f"comma-separated (default {default})"
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
        w.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml ([sla])")
        w.add_argument("--out", type=Path, help=f"default reports/sweep-{name}")
        w.set_defaults(handler=cmd_sweep_load)


# ---------------------------------------------------------------------------- parser


def _add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, help="state, logs and data (env PERFCI_HOME)")
    p.add_argument("--pg-port", type=int, help="PostgreSQL port (env PERFCI_PG_PORT)")
    p.add_argument("--redis-port", type=int, help="Valkey port (env PERFCI_REDIS_PORT)")
    p.add_argument("--port", type=int, help="service port (env PERFCI_SERVICE_PORT)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfci", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_stack = sub.add_parser("stack", help="start, stop or inspect the embedded stack")
    stack_sub = p_stack.add_subparsers(dest="stack_command", required=True)
    p_up = stack_sub.add_parser("up", help="start PostgreSQL, Valkey and the service")
    _add_stack_options(p_up)
    p_up.add_argument("--workers", type=int, help="service worker processes (env PERFCI_WORKERS)")
    p_up.add_argument("--server", choices=["uvicorn", "granian"], help="ASGI server")
    p_up.add_argument("--embedder", choices=["minilm", "hash"], help="SEARCH_EMBEDDER")
    p_up.add_argument(
        "--index-mode", choices=["hnsw", "ivfflat", "exact"], help="SEARCH_INDEX_MODE"
    )
    p_up.set_defaults(handler=cmd_stack_up)
    p_down = stack_sub.add_parser("down", help="stop everything `up` started, by PID")
    _add_stack_options(p_down)
    p_down.set_defaults(handler=cmd_stack_down)
    p_status = stack_sub.add_parser("status", help="URLs and PIDs of the running stack")
    _add_stack_options(p_status)
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.set_defaults(handler=cmd_stack_status)

    p_seed = sub.add_parser("seed", help="generate and bulk-load the synthetic corpus")
    _add_stack_options(p_seed)
    p_seed.add_argument("--docs", type=int, default=20_000, help="documents (default 20000)")
    p_seed.add_argument(
        "--embedder", choices=["minilm", "hash"], help="defaults to the running service's embedder"
    )
    p_seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p_seed.add_argument("--force", action="store_true", help="reload even if already loaded")
    p_seed.set_defaults(handler=cmd_seed)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Other stages (run, compare, comment, ...) register their sub-commands here.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _register_judging,
    _register_sweep,
]


# ---------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from ci.config import load_perf_config
    from ci.measure.profiles import check_scenarios, get_profile
    from ci.measure.run import RunRequest, execute, summary_table

    profile = get_profile(args.profile)
    if args.time_scale is not None:
        if not 0 < args.time_scale <= 10:
            raise ConfigError(f"--time-scale {args.time_scale}: expected a value in (0, 10]")
        profile = dataclasses.replace(profile, time_scale=args.time_scale)
    if args.embedder is not None:
        profile = dataclasses.replace(profile, embedder=args.embedder)
    scenarios = check_scenarios(tuple(args.scenario)) if args.scenario else profile.scenarios
    request = RunRequest(
        profile=profile,
        scenarios=scenarios,
        out_dir=args.out,
        stack=_stack_settings(args),
        target=args.target,
        rss_slope_mb_per_10min=load_perf_config(args.config).sla.rss_slope_mb_per_10min,
        profile_cpu=args.profile_cpu,
        profile_memory=args.profile_memory,
    )
    outcome = execute(request, _progress)
    print(summary_table(outcome))
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


def cmd_vegeta_targets(args: argparse.Namespace) -> int:
    from ci.measure.vegeta import write_json_targets

    path = write_json_targets(args.query_log, args.base_url, args.out, args.count, args.seed)
    _progress(f"wrote {args.count} vegeta JSON targets to {path}")
    return EXIT_OK


def _register_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ci.measure.profiles import PROFILES, SCENARIO_SCRIPTS

    p = sub.add_parser("run", help="run a load profile (k6, vegeta) and write results.json")
    _add_stack_options(p)
    p.add_argument("--profile", required=True, choices=list(PROFILES), help="load profile")
    p.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIO_SCRIPTS)}",
    )
    p.add_argument("--target", help="URL of a running service: start no stack")
    p.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    p.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml ([sla])")
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
    p.set_defaults(handler=cmd_run)

    v = sub.add_parser("vegeta-targets", help="vegeta JSON targets from the query log")
    v.add_argument("--query-log", type=Path, required=True, help="querylog.json of `seed`")
    v.add_argument("--base-url", default="http://127.0.0.1:8000", help="service URL")
    v.add_argument("--out", type=Path, required=True, help="targets file (JSON lines)")
    v.add_argument("--count", type=int, default=1000, help="targets (default 1000)")
    v.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    v.set_defaults(handler=cmd_vegeta_targets)


EXTRA_COMMANDS.append(_register_run)
EXTRA_COMMANDS.append(_ab.register)  # ab, baseline, calibrate (ci/ab.py)
EXTRA_COMMANDS.append(_chaos.register)  # chaos (ci/chaos.py)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PerfCIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
