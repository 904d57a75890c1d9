"""``perfci``: the pipeline's command line. Parsing, settings, exit codes, messages.

Exit codes: 0 success, 1 a failed check (a regression, an SLA breach), 2 a usage,
configuration or input error, 130 interrupted; ``perfci gate`` adds 3 for inconclusive
(:mod:`ci.judge.gate_verdict`). Only this package prints ``error:``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ci.cli import experiments, gate, history, judging, run, stack, sweep
from ci.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, terminate_as_interrupt
from ci.errors import PerfCIError

# Each command group adds its sub-commands; the order is the order of `perfci --help`.
COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    stack.register,  # stack up|down|status, seed
    judging.register,  # comment
    sweep.register,  # sweep index|pool|workers
    run.register,  # run, vegeta-targets
    experiments.register,  # baseline, chaos
    gate.register,  # gate (the PR check), calibrate
    run.register_report,  # report DIR, diff BASE DIR
    history.register,  # history add|detect|backfill|dashboard|record|issues
)

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfci", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMAND_GROUPS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        # SIGTERM (a cancelled CI job, a timeout) unwinds like Ctrl-C in every command:
        # the stacks it started stop by PID, its worktrees go
        with terminate_as_interrupt():
            return handler(args)
    except PerfCIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
