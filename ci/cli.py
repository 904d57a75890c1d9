"""``perfci``: the pipeline's command line. Parsing, settings, exit codes, messages.

Exit codes: 0 pass (or warn), 1 a regression or an SLA failure, 2 a usage,
configuration or input error. Only this module prints ``error:``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ci import stack
from ci.errors import PerfCIError, StackError
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
    result = seed_corpus(settings.run_dir, database_url, args.docs, args.seed, env,
                         force=args.force, progress=_progress)
    print(json.dumps({
        "docs": result.docs, "seed": result.seed, "corpus": str(result.corpus_path),
        "query_log": str(result.query_log_path), "corpus_hash": result.corpus_hash,
        "loader": result.loader,
    }, indent=2))
    return EXIT_OK


# ---------------------------------------------------------------------------- parser


def _add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, help="state, logs and data (env PERFCI_HOME)")
    p.add_argument("--pg-port", type=int, help="PostgreSQL port (env PERFCI_PG_PORT)")
    p.add_argument("--redis-port", type=int, help="Valkey port (env PERFCI_REDIS_PORT)")
    p.add_argument("--port", type=int, help="service port (env PERFCI_SERVICE_PORT)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perfci", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_stack = sub.add_parser("stack", help="start, stop or inspect the embedded stack")
    stack_sub = p_stack.add_subparsers(dest="stack_command", required=True)
    p_up = stack_sub.add_parser("up", help="start PostgreSQL, Valkey and the service")
    _add_stack_options(p_up)
    p_up.add_argument("--workers", type=int, help="service worker processes (env PERFCI_WORKERS)")
    p_up.add_argument("--server", choices=["uvicorn", "granian"], help="ASGI server")
    p_up.add_argument("--embedder", choices=["minilm", "hash"], help="SEARCH_EMBEDDER")
    p_up.add_argument("--index-mode", choices=["hnsw", "ivfflat", "exact"],
                      help="SEARCH_INDEX_MODE")
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
    p_seed.add_argument("--embedder", choices=["minilm", "hash"],
                        help="defaults to the running service's embedder")
    p_seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p_seed.add_argument("--force", action="store_true", help="reload even if already loaded")
    p_seed.set_defaults(handler=cmd_seed)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Other stages (run, compare, comment, ...) register their sub-commands here.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


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
