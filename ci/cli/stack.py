"""``perfci stack up|down|status`` and ``perfci seed``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ci import stack
from ci.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    add_stack_options,
    progress,
    stack_settings,
)
from ci.errors import StackError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_stack_up(args: argparse.Namespace) -> int:
    settings = stack_settings(args)
    state = stack.up(settings, progress)
    print(json.dumps(stack.status(Path(state.run_dir)), indent=2))
    return EXIT_OK


def cmd_stack_down(args: argparse.Namespace) -> int:
    settings = stack_settings(args)
    state = stack.down(settings.run_dir)
    if state is None:
        progress(f"no stack is running from {settings.run_dir}")
    else:
        progress("stack stopped")
    return EXIT_OK


def cmd_stack_status(args: argparse.Namespace) -> int:
    settings = stack_settings(args)
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

    settings = stack_settings(args)
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
        progress=progress,
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


def register(sub: Subparsers) -> None:
    p_stack = sub.add_parser("stack", help="start, stop or inspect the embedded stack")
    stack_sub = p_stack.add_subparsers(dest="stack_command", required=True)
    p_up = stack_sub.add_parser("up", help="start PostgreSQL, Valkey and the service")
    add_stack_options(p_up)
    p_up.add_argument("--workers", type=int, help="service worker processes (env PERFCI_WORKERS)")
    p_up.add_argument("--server", choices=["uvicorn", "granian"], help="ASGI server")
    p_up.add_argument("--embedder", choices=["minilm", "hash"], help="SEARCH_EMBEDDER")
    p_up.add_argument(
        "--index-mode", choices=["hnsw", "ivfflat", "exact"], help="SEARCH_INDEX_MODE"
    )
    p_up.set_defaults(handler=cmd_stack_up)
    p_down = stack_sub.add_parser("down", help="stop everything `up` started, by PID")
    add_stack_options(p_down)
    p_down.set_defaults(handler=cmd_stack_down)
    p_status = stack_sub.add_parser("status", help="URLs and PIDs of the running stack")
    add_stack_options(p_status)
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.set_defaults(handler=cmd_stack_status)

    p_seed = sub.add_parser("seed", help="generate and bulk-load the synthetic corpus")
    add_stack_options(p_seed)
    p_seed.add_argument("--docs", type=int, default=20_000, help="documents (default 20000)")
    p_seed.add_argument(
        "--embedder", choices=["minilm", "hash"], help="defaults to the running service's embedder"
    )
    p_seed.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p_seed.add_argument("--force", action="store_true", help="reload even if already loaded")
    p_seed.set_defaults(handler=cmd_seed)
