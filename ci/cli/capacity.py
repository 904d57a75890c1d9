"""``perfci sweep capacity``: both services' capacity for both query mixes, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import EXIT_OK, positive_int, progress, timestamped
from ci.errors import ConfigError
from ci.experiments.capacity import Variant

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_sweep_capacity(args: argparse.Namespace) -> int:
    from ci.experiments.capacity import CapacityConfig, summarise, write_outputs
    from ci.experiments.capacity_run import execute
    from ci.settings import load_perf_config

    perf = load_perf_config(args.config)
    config = CapacityConfig(
        docs=args.docs,
        seed=args.seed,
        embedder=args.embedder,
        mixes=tuple(args.mix or ("zipf", "unique")),
        repeat=args.repeat,
        start_rate=args.start_rate,
        factor=args.factor,
        max_rate=args.max_rate,
        resolution=args.resolution,
        warmup_s=args.warmup_s,
        measure_s=args.step_s,
        p99_ms=args.p99_ms,
        zipf_warm_rate=args.zipf_warm_rate,
        order_seed=args.order_seed,
        variants=tuple(_variant(v) for v in args.variant or []),
        reference_app=args.reference_app or perf.capacity.reference_app,
    )
    service_env = dict(_env_pairs(args.env))
    out = args.out or timestamped("capacity")
    sla = perf.sla
    points = execute(config, out, progress, service_env=service_env, lock=args.lock, sla=sla)
    rows = summarise(points, config.start_rate)
    print(write_outputs(out, config, points, rows))
    progress(f"tables, JSON and plot written to {out}")
    return EXIT_OK


def _env_pairs(values: list[str] | None, option: str = "--env") -> list[tuple[str, str]]:
    pairs = []
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith(("SEARCH_", "REFERENCE_")):
            raise ConfigError(
                f"{option} {item!r} is invalid: expected SEARCH_NAME=VALUE or REFERENCE_NAME=VALUE"
            )
        pairs.append((name, value))
    return pairs


def _variant(text: str) -> Variant:
    """``NAME[@CHECKOUT][:SEARCH_A=1,SEARCH_B=2]``."""
    head, _, settings = text.partition(":")
    name, at, root = head.partition("@")
    if not name or (at and not root) or (not at and not settings):
        raise ConfigError(
            f"--variant {text!r} is invalid: expected NAME:SEARCH_A=1,... or NAME@CHECKOUT"
        )
    if root and not (Path(root) / "service").is_dir():
        raise ConfigError(f"--variant {text!r}: {root} holds no service/ folder")
    env = tuple(_env_pairs(settings.split(","), "--variant")) if settings else ()
    return Variant(name, env, str(Path(root).resolve()) if root else None)


def register(sweep_sub: Subparsers) -> None:
    c = sweep_sub.add_parser(
        "capacity",
        help="capacity (highest open-model rate with p99 within the limit) of the service and "
        "of the straightforward reference, for the Zipf log and all-unique queries",
    )
    c.add_argument("--docs", type=positive_int, default=20_000, help="corpus size (20000)")
    c.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    c.add_argument("--seed", type=int, default=42, help="corpus, query log, unique queries (42)")
    c.add_argument(
        "--mix", action="append", choices=["zipf", "unique"], help="repeatable (default both)"
    )
    c.add_argument("--repeat", type=positive_int, default=3, help="rounds (default 3)")
    c.add_argument("--start-rate", type=positive_int, default=50, help="light load, req/s (50)")
    c.add_argument("--factor", type=float, default=2.0, help="climb factor per pass (2)")
    c.add_argument("--max-rate", type=positive_int, default=6400, help="req/s (6400)")
    c.add_argument("--resolution", type=float, default=0.1, help="bisect to this fraction (0.1)")
    c.add_argument("--step-s", type=float, default=10.0, help="measured seconds per step (10)")
    c.add_argument("--warmup-s", type=float, default=3.0, help="unmeasured seconds per step (3)")
    c.add_argument("--p99-ms", type=float, default=100.0, help="the capacity limit (100)")
    c.add_argument(
        "--zipf-warm-rate",
        type=positive_int,
        default=100,
        help="req/s of the Zipf log's once-over before each round's Zipf ladder (100)",
    )
    c.add_argument("--order-seed", type=int, help="seed of the interleaving order")
    c.add_argument(
        "--env",
        action="append",
        metavar="SEARCH_NAME=VALUE",
        help="a setting of both services (repeatable), e.g. SEARCH_EMBED_THREADS=2; "
        "REFERENCE_* ones only the reference reads (REFERENCE_MINILM_KERNELS=int8)",
    )
    c.add_argument(
        "--variant",
        action="append",
        metavar="NAME[@CHECKOUT][:SEARCH_A=1,...]",
        help="one more service, with these settings or another checkout's service/, in the "
        "same interleaving (repeatable): an A/B against the same reference",
    )
    c.add_argument(
        "--lock",
        type=Path,
        help="flock this file around each round and mix (a shared machine's measure lock)",
    )
    c.add_argument(
        "--reference-app",
        metavar="MODULE:FUNCTION",
        help="the reference's ASGI factory in the checkout (default: perf.toml [capacity])",
    )
    c.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    c.add_argument("--out", type=Path, help="default reports/capacity-<time>")
    c.set_defaults(handler=cmd_sweep_capacity)
