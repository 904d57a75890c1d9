"""``perfci compare`` and ``perfci comment``: judge result files, render, post.

``perfci comment --event $GITHUB_EVENT_PATH --report DIR`` is the perf-comment workflow's
step: the perf/gate check run and the sticky comment for one ``workflow_run`` event of
perf-pr (:mod:`ci.post.pr_check`). ``perfci comment --repo R --pr N --report DIR`` posts a
``perfci compare`` report folder with a personal token (comment and commit status).
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


def cmd_compare(args: argparse.Namespace) -> int:
    from ci.judge.bench import compare_benchmarks
    from ci.judge.inputs import expand, is_benchmark_file
    from ci.judge.verdict import exit_code, judge
    from ci.render.environment import RenderContext
    from ci.render.report import write_report
    from ci.render.text import benchmark_table
    from ci.settings import load_perf_config

    config = load_perf_config(args.config)
    base, candidate = expand(args.base), expand(args.candidate)
    if all(is_benchmark_file(p) for p in [*base, *candidate]):
        result = compare_benchmarks(base, candidate, config.compare, seed=args.seed)
        print(benchmark_table(result))
        return exit_code(result.status)
    judgement = judge(base, candidate, config, seed=args.seed)
    context = RenderContext(base_ref=args.base_ref, head_ref=args.head_ref)
    if args.report is not None:
        files = write_report(args.report, judgement, context, base, candidate)
        progress(f"report written to {files['html']}")
    from ci.render.markdown import render_summary

    print(render_summary(judgement, context, primary=config.gate.rule.primary_names))
    print(judgement.headline)
    return judgement.exit_code


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


def cmd_comment(args: argparse.Namespace) -> int:
    if args.event is not None:
        return cmd_comment_event(args)
    if args.repo is None or args.pr is None or args.report is None:
        raise ConfigError("--repo, --pr and --report are required (or give --event)")
    from ci.judge.inputs import report_inputs
    from ci.judge.verdict import judge
    from ci.post.github import post_comment, status_for
    from ci.render.environment import RenderContext
    from ci.render.markdown import render_comment
    from ci.settings import load_perf_config

    if args.pr < 1:
        raise ConfigError(f"--pr {args.pr} is invalid: expected a pull-request number >= 1")
    if args.repo.count("/") != 1 or not all(args.repo.split("/")):
        raise ConfigError(f"--repo {args.repo!r} is invalid: expected OWNER/NAME")
    base, candidate = report_inputs(args.report)
    config = load_perf_config(args.config)
    judgement = judge(base, candidate, config)
    context = RenderContext(
        repository=args.repo,
        pr_number=args.pr,
        run_url=args.run_url,
        artifact_url=args.artifact_url,
    )
    body = render_comment(judgement, context, primary=config.gate.rule.primary_names)
    if args.dry_run:
        print(body)
        return judgement.exit_code
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise ConfigError("GITHUB_TOKEN is not set (use --dry-run to print the comment)")
    state = status_for(judgement.verdict.status)
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
        bot_login=args.bot_login,
        max_wait=args.max_wait,
    )
    verb = "created" if outcome.created else "updated"
    progress(f"comment {verb}: {outcome.comment_url}; perf/gate {outcome.status_state}")
    return judgement.exit_code


def register(sub: Subparsers) -> None:
    p = sub.add_parser("compare", help="compare result sets (or pytest-benchmark files)")
    p.add_argument("base", type=Path, nargs="+", help="base results.json files or folders")
    p.add_argument(
        "--candidate",
        type=Path,
        nargs="+",
        required=True,
        help="candidate results.json files or folders",
    )
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    p.add_argument("--report", type=Path, help="write comment.md, summary.md, report.html here")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--base-ref", help="label for the base (branch or commit)")
    p.add_argument("--head-ref", help="label for the candidate")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser(
        "comment", help="post (or print) the PR comment and the perf/gate check or status"
    )
    p.add_argument(
        "--event",
        type=Path,
        help="a workflow_run event of perf-pr ($GITHUB_EVENT_PATH): set the perf/gate check run "
        "and the comment from it and the downloaded artifact (--report)",
    )
    p.add_argument("--repo", help="OWNER/NAME (without --event)")
    p.add_argument("--pr", type=int, help="pull-request number (without --event)")
    p.add_argument(
        "--report", type=Path, help="folder from `compare --report`, or the perf-pr artifact"
    )
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    p.add_argument(
        "--api-url",
        default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)",
    )
    p.add_argument("--sha", help="commit for the status (default: the PR head)")
    p.add_argument("--run-url", help="link to the workflow run")
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
    p.add_argument("--dry-run", action="store_true", help="print the comment, post nothing")
    p.set_defaults(handler=cmd_comment)
