"""``perfci history``: the history of main (add, detect, backfill, dashboard, record, issues).

``detect`` exits 0 when no regression is open, 1 when one is, 2 on bad input. ``issues``
exits 0 once every issue is where it should be (the open issue is the signal, not a red
workflow on every later push), 2 when it could not file them; with ``--job-summary`` it
also appends the change points, the issues and the links to the Actions job summary.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import EXIT_FAIL, EXIT_OK, positive_int, progress
from ci.errors import ConfigError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers
    from ci.history.detect import Detection
    from ci.settings import PerfConfig


def _config(args: argparse.Namespace) -> PerfConfig:
    from ci.settings import load_perf_config

    return load_perf_config(args.config)


def _directions(perf: PerfConfig) -> dict[str, str]:
    """Which way is better, for the store's otava.yaml: the metrics the history analyses."""
    return {m.name: m.direction for m in perf.gate.rule.metrics}


def _store(path: Path, *, must_exist: bool) -> Path:
    if must_exist and not path.is_dir():
        raise ConfigError(f"--store {path}: no such folder (add a results file first)")
    return path


def _machine_class(args: argparse.Namespace) -> str | None:
    return args.machine_class or os.environ.get("PERFCI_MACHINE_CLASS") or None


def _detect(store: Path, perf: PerfConfig) -> Detection:
    from ci.history.detect import detect, primary_metrics
    from ci.history.store import list_series, read_all

    history = perf.history
    keys = list_series(_store(store, must_exist=True))
    if not keys:
        raise ConfigError(f"--store {store}: holds no series (no */*/*.csv files)")
    detection = detect(read_all(store, keys), primary_metrics(perf), history)
    if not detection.analyses:
        scenarios = sorted({k.scenario for k in keys})
        raise ConfigError(
            f"--store {store}: no series of the tracked scenarios "
            f"({', '.join(history.scenarios)}; perf.toml [history] scenarios) with a primary "
            f"metric; the store holds {', '.join(scenarios)}"
        )
    return detection


def cmd_add(args: argparse.Namespace) -> int:
    from ci.history.add import add_results, commit_info
    from ci.results import load_results

    perf = _config(args)
    history = perf.history
    results = load_results(args.results)
    info = commit_info(args.git_repo, args.commit)
    outcomes = add_results(
        args.store,
        results,
        info,
        source=str(args.results),
        profile=args.profile or history.profile,
        machine_class=_machine_class(args),
        directions=_directions(perf),
    )
    for o in outcomes:
        verb = "replaced" if o.replaced else "added"
        progress(f"{verb} {info.sha[:12]} in {o.path} ({o.rows} rows, {len(o.metrics)} metrics)")
    return EXIT_OK


def cmd_detect(args: argparse.Namespace) -> int:
    from ci.render.history import change_point_lines

    detection = _detect(args.store, _config(args))
    if args.json:
        print(json.dumps([cp.to_json() for cp in detection.change_points], indent=2))
    else:
        print(change_point_lines(detection))
    return EXIT_FAIL if detection.open_regressions else EXIT_OK


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ci.render.dashboard import render_dashboard, write_dashboard

    detection = _detect(args.store, _config(args))
    html = render_dashboard(detection, repo_url=args.repo_url)
    path = write_dashboard(args.out, html)
    progress(f"dashboard of {len(detection.analyses)} chart(s) written to {path}")
    print(f"dashboard: {path}")
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    from ci.experiments.worktrees import repo_root
    from ci.history.backfill import backfill, select_commits, stack_measure
    from ci.measure.profiles import check_scenarios, get_profile

    perf = _config(args)
    history = perf.history
    profile = get_profile(args.profile or history.profile)
    scenarios = check_scenarios(tuple(args.scenario)) if args.scenario else profile.scenarios
    repo = repo_root(args.git_repo)
    commits = select_commits(repo, args.start, args.end, args.every)
    progress(
        f"backfilling {len(commits)} commit(s), profile {profile.name}: {', '.join(scenarios)}"
    )
    outcome = backfill(
        repo,
        commits,
        args.store,
        measure=stack_measure(profile, scenarios, perf.sla, progress),
        profile=profile.name,
        machine_class=_machine_class(args),
        directions=_directions(perf),
        progress=progress,
    )
    for commit, added in outcome.measured:
        print(f"{commit[:12]}: {', '.join(str(a.path) for a in added)}")
    for commit, why in outcome.failed:
        print(f"{commit[:12]}: NOT MEASURED: {why.splitlines()[0]}")
    return EXIT_FAIL if outcome.failed else EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    """Add a results file to the data branch (fetch, re-apply, push; retried) + dashboard."""
    from ci.history.add import add_results, commit_info
    from ci.history.datapush import push_change
    from ci.render.dashboard import render_dashboard, write_dashboard
    from ci.results import load_results

    perf = _config(args)
    history = perf.history
    results = load_results(args.results)
    info = commit_info(args.git_repo, args.commit)

    def apply(workdir: Path) -> bool:
        added = add_results(
            workdir,
            results,
            info,
            source=str(args.results),
            profile=args.profile or history.profile,
            machine_class=_machine_class(args),
            directions=_directions(perf),
        )
        html = render_dashboard(_detect(workdir, perf), repo_url=args.repo_url)
        write_dashboard(workdir / "docs", html)
        return bool(added)

    token = os.environ.get(args.token_env, "") if args.token_env else ""
    outcome = push_change(
        args.checkout,
        args.remote,
        args.branch,
        apply,
        f"history: {info.sha[:12]} ({results.run.profile}, {results.run.machine.machine_class})",
        token=token or None,
    )
    if outcome.commit is None:
        progress(f"{args.branch} already holds {info.sha[:12]}: nothing pushed")
    else:
        progress(f"pushed {outcome.commit[:12]} to {args.branch} (attempt {outcome.attempts})")
    print(f"store: {args.checkout}")
    return EXIT_OK


def cmd_issues(args: argparse.Namespace) -> int:
    from ci.history.tracking import plan_issues
    from ci.post.client import ClientOptions, Session
    from ci.post.issues import IssueText, sync_issues
    from ci.post.summary import append_job_summary
    from ci.render.history import (
        change_point_lines,
        close_comment,
        issue_body,
        issue_title,
        job_summary,
    )

    perf = _config(args)
    history = perf.history
    detection = _detect(args.store, perf)
    repo_url = args.repo_url or f"https://github.com/{args.repo}"
    plan = plan_issues(detection)
    wanted = [
        IssueText(
            tracking=t.id,
            state=t.state,
            title=issue_title(t),
            body=issue_body(
                t, repo_url=repo_url, dashboard_url=args.dashboard_url, run_url=args.run_url
            ),
            comment=close_comment(t, repo_url=repo_url, run_url=args.run_url),
        )
        for t in plan
    ]
    token = os.environ.get(args.token_env, "")
    if not token:
        raise ConfigError(f"{args.token_env} is not set: the issues need a GitHub token")
    options = ClientOptions(api_url=args.api_url, bot_login=args.bot_login)
    with Session(token, options) as session:
        outcomes = sync_issues(session, args.repo, history.issue_label, wanted)
    print(change_point_lines(detection))
    for o in outcomes:
        progress(f"issue #{o.number} {o.action}: {o.url}")
    if args.job_summary:
        markdown = job_summary(
            detection,
            plan,
            outcomes,
            repo_url=repo_url,
            dashboard_url=args.dashboard_url,
            run_url=args.run_url,
        )
        written = append_job_summary(markdown)
        if written is None:
            progress("GITHUB_STEP_SUMMARY is not set: no job summary written")
        else:
            progress(f"job summary appended to {written}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = sub.add_parser("history", help="the history of main: add, detect, backfill, dashboard")
    hs = p.add_subparsers(dest="history_command", required=True)

    def common(q: argparse.ArgumentParser, *, store: bool = True) -> None:
        if store:
            q.add_argument("--store", type=Path, required=True, help="the history store folder")
        q.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")

    def expected(q: argparse.ArgumentParser) -> None:
        q.add_argument("--profile", help="the history's profile (default: perf.toml [history])")
        q.add_argument(
            "--machine-class",
            help="refuse runs of another machine class (default: env PERFCI_MACHINE_CLASS)",
        )
        q.add_argument(
            "--git-repo", type=Path, default=Path("."), help="git checkout holding the commit"
        )

    q = hs.add_parser("add", help="add a results file's rows (one per scenario) to the store")
    q.add_argument("results", type=Path, metavar="RESULTS.json")
    q.add_argument("--commit", required=True, help="the commit the run measured (SHA)")
    common(q)
    expected(q)
    q.set_defaults(handler=cmd_add)

    q = hs.add_parser("detect", help="change points (Apache Otava) of the primary metrics")
    common(q)
    q.add_argument("--json", action="store_true", help="print the change points as JSON")
    q.set_defaults(handler=cmd_detect)

    q = hs.add_parser("dashboard", help="a static site: one chart per primary metric")
    common(q)
    q.add_argument("--out", type=Path, required=True, help="the site's folder")
    q.add_argument("--repo-url", help="https://github.com/OWNER/NAME, for links to commits")
    q.set_defaults(handler=cmd_dashboard)

    q = hs.add_parser("backfill", help="measure past commits (worktrees, today's harness)")
    q.add_argument("--from", dest="start", required=True, metavar="REV", help="first commit")
    q.add_argument("--to", dest="end", required=True, metavar="REV", help="last commit")
    q.add_argument("--every", type=positive_int, default=1, help="every Nth commit (default 1)")
    q.add_argument("--scenario", action="append", metavar="NAME", help="only these (repeatable)")
    common(q)
    expected(q)
    q.set_defaults(handler=cmd_backfill)

    q = hs.add_parser("record", help="add a results file to the data branch and push (CI)")
    q.add_argument("results", type=Path, metavar="RESULTS.json")
    q.add_argument("--commit", required=True, help="the commit the run measured (SHA)")
    q.add_argument("--remote", required=True, help="the repository's URL (or a path)")
    q.add_argument("--branch", default="perf-data", help="the data branch (default perf-data)")
    q.add_argument(
        "--checkout", type=Path, required=True, help="a folder of its own for the branch"
    )
    q.add_argument("--repo-url", help="https://github.com/OWNER/NAME, for links to commits")
    q.add_argument("--token-env", help="environment variable holding a token to push with")
    common(q, store=False)
    expected(q)
    q.set_defaults(handler=cmd_record)

    q = hs.add_parser("issues", help="open, update or close one GitHub issue per regression")
    common(q)
    q.add_argument("--repo", required=True, help="OWNER/NAME")
    q.add_argument(
        "--api-url",
        default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        help="GitHub API base URL (GitHub Enterprise: https://HOST/api/v3)",
    )
    q.add_argument("--repo-url", help="web URL of the repository (default https://github.com/REPO)")
    q.add_argument("--dashboard-url", help="the published dashboard, linked from each issue")
    q.add_argument("--run-url", help="the workflow run, linked from each issue")
    q.add_argument("--token-env", default="GITHUB_TOKEN", help="variable holding the token")
    q.add_argument("--bot-login", help="the token's login (GITHUB_TOKEN: github-actions[bot])")
    q.add_argument(
        "--job-summary",
        action="store_true",
        help="append the change points, the issues and the links to $GITHUB_STEP_SUMMARY",
    )
    q.set_defaults(handler=cmd_issues)
