"""``perfci comment``: the perf-comment workflow's step.

``perfci comment --event $GITHUB_EVENT_PATH --report DIR`` sets the perf/gate check run and
the sticky comment for one ``workflow_run`` event of perf-pr (:mod:`ci.post.pr_check`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import progress
from ci.errors import ConfigError, PostError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers


def cmd_comment_event(args: argparse.Namespace) -> int:
    from ci.judge.gate_folder import GateFolder
    from ci.post.client import ClientOptions, Session
    from ci.post.event import load_event
    from ci.post.pr_check import completed_outcome, handle_event
    from ci.settings import load_perf_config

    event = load_event(args.event)
    if event.event != "pull_request":
        raise ConfigError(
            f"{args.event}: the {event.workflow} run was triggered by {event.event!r}; "
            "perfci comment --event posts only for pull_request runs"
        )
    folder = GateFolder(args.report) if args.report is not None else None
    rule = load_perf_config(args.config).gate.rule  # the verdict must be judged by this rule
    if args.dry_run:
        if event.action != "completed":
            print(f"would mark {event.repo}@{event.head_sha[:12]} perf/gate in progress")
            return 0
        outcome = completed_outcome(event, folder, args.artifact_url, rule)
        print(f"check: {outcome.conclusion}: {outcome.check.title}\n\n{outcome.check.summary}")
        if outcome.comment is not None:
            print(f"comment on #{outcome.pr}:\n{outcome.comment}")
        return 0
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise ConfigError("GITHUB_TOKEN is not set (use --dry-run to print what would be posted)")
    options = ClientOptions(api_url=args.api_url, bot_login=args.bot_login, max_wait=args.max_wait)
    with Session(token, options) as session:
        report = handle_event(session, event, folder, rule)
    for note in report.notes:
        progress(note)
    if report.check is not None:
        state = report.check.conclusion or report.check.status
        stale = " (a newer attempt owns the check)" if report.check.stale else ""
        progress(f"perf/gate check run {report.check.check_run_id}: {state}{stale}")
    if report.comment is not None:
        verb = "created" if report.comment.created else "updated"
        progress(f"comment {verb}: {report.comment.comment_url}")
    if report.errors:
        raise PostError("; ".join(report.errors))
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("comment", help="post (or print) the perf/gate check run and PR comment")
    p.add_argument(
        "--event",
        type=Path,
        required=True,
        help="a workflow_run event of perf-pr ($GITHUB_EVENT_PATH): set the perf/gate check run "
        "and the comment from it and the downloaded artifact (--report)",
    )
    p.add_argument("--report", type=Path, help="the downloaded perf-pr artifact")
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    p.add_argument(
        "--api-url",
        default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)",
    )
    p.add_argument("--artifact-url", help="link to the artifacts")
    p.add_argument(
        "--bot-login",
        default=os.environ.get("PERFCI_BOT_LOGIN"),
        help="the token's account, which wrote the sticky comment (GITHUB_TOKEN: "
        "github-actions[bot]; default: asked from GitHub)",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=90.0,
        help="longest rate-limit wait accepted, seconds (default 90; longer: an error)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the check and comment, post nothing"
    )
    p.set_defaults(handler=cmd_comment_event)
