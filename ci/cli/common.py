"""What every command group shares: exit codes, progress lines, stack options and types."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ci.errors import ConfigError
from ci.measure.profiles import Profile
from ci.settings import StackSettings

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def progress(message: str) -> None:
    print(f"perfci: {message}", file=sys.stderr, flush=True)


def stack_settings(args: argparse.Namespace) -> StackSettings:
    """Environment (PERFCI_*) first, then the command line's stack options."""
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


def add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, help="state, logs and data (env PERFCI_HOME)")
    p.add_argument("--pg-port", type=int, help="PostgreSQL port (env PERFCI_PG_PORT)")
    p.add_argument("--redis-port", type=int, help="Valkey port (env PERFCI_REDIS_PORT)")
    p.add_argument("--port", type=int, help="service port (env PERFCI_SERVICE_PORT)")


def ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: expected at least 1")
    return value


def with_time_scale(profile: Profile, time_scale: float | None) -> Profile:
    if time_scale is None:
        return profile
    if not 0 < time_scale <= 10:
        raise ConfigError(f"--time-scale {time_scale}: expected a value in (0, 10]")
    return dataclasses.replace(profile, time_scale=time_scale)


def timestamped(kind: str) -> Path:
    return Path("reports") / f"{kind}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: runs stop, worktrees go."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
