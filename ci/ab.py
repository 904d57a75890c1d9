"""A/B runs on one machine: ``perfci ab``, ``perfci baseline`` and ``perfci calibrate``.

``ab`` checks out both revisions as detached git worktrees and runs each revision's own
``perfci run`` in interleaved pairs, each run on a fresh stack (its own ``PERFCI_HOME`` and
free ports). The order inside a pair is random (seedable) so that a drift of the machine
during the job (thermal, a noisy neighbour) hits both sides alike instead of always the
one that runs second. The results are then judged like any others (``ci.compare``).

The running itself (worktrees, fresh stacks, the one runner function tests replace) is
``ci.pairs``.

``calibrate`` answers "how often does this gate cry wolf, and does it see a known
slowdown?": per pair it runs HEAD three times in random order: a base, an identical
candidate (A/A) and a candidate slowed by ``SEARCH_DEBUG_REQUEST_DELAY_MS`` (a service
setting that sleeps that long in every search request). The A/A and the slowed comparison
share the base runs, which saves a third of the runs and leaves both comparisons paired.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.config import PerfConfig, load_perf_config
from ci.errors import ConfigError, ResultsError
from ci.pairs import (
    Checkout,
    Progress,
    Runner,
    RunSpec,
    fresh_stack_env,
    repo_root,
    run_pairs,
    subprocess_runner,
    worktrees,
)

if TYPE_CHECKING:  # judging pulls in numpy, scipy and matplotlib: imported when used
    from ci.report import Judgement
    from ci.results import RunResults

DEFAULT_SLOWDOWN_MS = 2  # about 10 % of a search's median on the smoke profile


# ---------------------------------------------------------------------------- ab


@dataclass(frozen=True, slots=True)
class ABOutcome:
    judgement: Judgement
    order: tuple[tuple[str, ...], ...]
    out_dir: Path
    summary: str


def run_ab(
    repo: Path,
    base_ref: str,
    candidate_ref: str,
    pairs: int,
    profile: str,
    out_dir: Path,
    config: PerfConfig,
    *,
    seed: int | None = None,
    scenarios: tuple[str, ...] = (),
    runner: Runner = subprocess_runner,
    progress: Progress = lambda _m: None,
) -> ABOutcome:
    """Both revisions in interleaved pairs, judged and rendered into ``out_dir``."""
    from ci.render import RenderContext
    from ci.report import judge, write_report

    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="perfci-ab-") as tmp,
        worktrees(repo, {"base": base_ref, "candidate": candidate_ref}, Path(tmp)) as trees,
    ):
        paired = run_pairs(
            trees,
            pairs,
            profile,
            out_dir=out_dir,
            scratch=Path(tmp),
            runner=runner,
            rng=rng,
            scenarios=scenarios,
            progress=progress,
        )
    base, cand = paired.files["base"], paired.files["candidate"]
    judgement = judge(base, cand, config, seed)
    context = RenderContext(base_ref=base_ref, head_ref=candidate_ref)
    # The report folder `perfci comment --report` reads: inputs/{base,candidate}-N.json
    # in pair order, summary.md, comment.md, report.html, verdict.json.
    files = write_report(out_dir, judgement, context, base, cand)
    summary = files["summary"].read_text(encoding="utf-8")
    manifest = {
        "base": {"ref": base_ref, "commit": trees["base"].commit},
        "candidate": {"ref": candidate_ref, "commit": trees["candidate"].commit},
        "profile": profile,
        "pairs": pairs,
        "seed": seed,
        "order": [list(o) for o in paired.order],
        "results": {
            label: [str(p.relative_to(out_dir)) for p in paths]
            for label, paths in paired.files.items()
        },
        "verdict": judgement.verdict.status,
    }
    (out_dir / "ab.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return ABOutcome(judgement, paired.order, out_dir, summary)


# ---------------------------------------------------------------------------- baseline


@dataclass(frozen=True, slots=True)
class BaselineOutcome:
    installed: Path
    archived: Path | None
    results: RunResults


def refresh_baseline(
    checkout: Path,
    profile: str,
    out_dir: Path,
    *,
    runner: Runner = subprocess_runner,
    progress: Progress = lambda _m: None,
) -> BaselineOutcome:
    """Run ``checkout``; archive the old ``results.json`` under ``history/``; install the new."""
    from ci.results import load_results

    with tempfile.TemporaryDirectory(prefix="perfci-baseline-") as tmp:
        spec = RunSpec(
            "baseline", 0, checkout, profile, Path(tmp) / "run", fresh_stack_env(Path(tmp) / "home")
        )
        progress(f"baseline run of {checkout} ({profile} profile)")
        fresh = runner(spec)
        results = load_results(fresh)  # refuse a bad file before touching the baseline
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "results.json"
        archived = _archive(target, out_dir / "history") if target.exists() else None
        staged = out_dir / ".results.json.new"
        shutil.copyfile(fresh, staged)
        os.replace(staged, target)
    return BaselineOutcome(target, archived, results)


def _archive(current: Path, history: Path) -> Path:
    """Move ``current`` to ``history/<created_at>-<commit>.json`` (no ``:``: artifact-safe)."""
    from ci.results import load_results

    try:
        old = load_results(current)
        stamp = _compact_time(old.run.created_at)
        commit = (old.run.git_commit or "nocommit")[:12]
    except ResultsError:  # an unreadable old baseline is still kept, named by its mtime
        stamp = dt.datetime.fromtimestamp(current.stat().st_mtime, dt.UTC).strftime(
            "%Y%m%dT%H%M%SZ"
        )
        commit = "unreadable"
    history.mkdir(parents=True, exist_ok=True)
    dest = history / f"{stamp}-{commit}.json"
    n = 1
    while dest.exists():
        dest = history / f"{stamp}-{commit}-{n}.json"
        n += 1
    os.replace(current, dest)
    return dest


def _compact_time(iso: str) -> str:
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return "".join(c for c in iso if c.isalnum())[:20] or "undated"
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------- calibrate


@dataclass(frozen=True, slots=True)
class CalibrationRound:
    aa: Judgement
    slowed: Judgement
    order: tuple[tuple[str, ...], ...]
    base_p50_ms: float  # median over base runs and scenarios of the p50 latency


def run_calibration(
    repo: Path,
    ref: str,
    pairs: int,
    profile: str,
    slowdown_ms: int,
    repeat: int,
    out_dir: Path,
    config: PerfConfig,
    *,
    seed: int | None = None,
    scenarios: tuple[str, ...] = (),
    runner: Runner = subprocess_runner,
    progress: Progress = lambda _m: None,
) -> tuple[CalibrationRound, ...]:
    """``repeat`` rounds of ``pairs`` (base, A/A candidate, slowed candidate) triples."""
    from ci.report import judge

    if repeat < 1:
        raise ConfigError(f"--repeat {repeat} is invalid: expected at least 1")
    if not 1 <= slowdown_ms <= 60_000:
        raise ConfigError(f"--slowdown-ms {slowdown_ms} is invalid: expected 1-60000")
    rng = random.Random(seed)
    rounds: list[CalibrationRound] = []
    delay = {"SEARCH_DEBUG_REQUEST_DELAY_MS": str(slowdown_ms)}
    no_delay = {"SEARCH_DEBUG_REQUEST_DELAY_MS": "0"}
    with (
        tempfile.TemporaryDirectory(prefix="perfci-calibrate-") as tmp,
        worktrees(repo, {"head": ref}, Path(tmp)) as trees,
    ):
        head = trees["head"]
        same = {label: Checkout(label, ref, head.commit, head.path) for label in _CAL_LABELS}
        for r in range(repeat):
            progress(f"calibration round {r + 1}/{repeat}")
            paired = run_pairs(
                same,
                pairs,
                profile,
                out_dir=out_dir / f"round-{r + 1:02d}",
                scratch=Path(tmp) / f"round-{r + 1:02d}",
                runner=runner,
                rng=rng,
                extra_env={"base": no_delay, "aa": no_delay, "slowed": delay},
                scenarios=scenarios,
                progress=progress,
            )
            base = paired.files["base"]
            aa = judge(base, paired.files["aa"], config, seed)
            p50s = sorted(s.latency_ms.p50 for run in aa.base for s in run.scenarios)
            rounds.append(
                CalibrationRound(
                    aa=aa,
                    slowed=judge(base, paired.files["slowed"], config, seed),
                    order=paired.order,
                    base_p50_ms=p50s[len(p50s) // 2],
                )
            )
    return tuple(rounds)


_CAL_LABELS = ("base", "aa", "slowed")


def calibration_report(rounds: Sequence[CalibrationRound], slowdown_ms: int) -> dict[str, Any]:
    """Per metric the A/A and slowed statuses of every round; overall alarm counts.

    Calibration judges the comparison alone (no SLA gates): the question is whether the
    statistics mistake noise for a change, and whether they see a known one.
    """
    from ci.compare import verdict

    metrics: dict[str, dict[str, list[str]]] = {}
    for rnd in rounds:
        for side, judgement in (("aa", rnd.aa), ("slowed", rnd.slowed)):
            for scenario in judgement.comparison.scenarios:
                for m in scenario.metrics:
                    key = f"{scenario.name}/{m.metric}"
                    metrics.setdefault(key, {"aa": [], "slowed": []})[side].append(m.status)
    aa_all = [st for sides in metrics.values() for st in sides["aa"]]
    slowed_median = [
        st
        for key, sides in metrics.items()
        if key.endswith("/latency_p50")
        for st in sides["slowed"]
    ]
    aa_status = [verdict(r.aa.comparison, ()).status for r in rounds]
    slowed_status = [verdict(r.slowed.comparison, ()).status for r in rounds]
    return {
        "slowdown_ms": slowdown_ms,
        "rounds": len(rounds),
        "base_p50_ms": [r.base_p50_ms for r in rounds],
        "metrics": metrics,
        "aa_verdicts": aa_status,
        "slowed_verdicts": slowed_status,
        "false_alarms": sum(s == "fail" for s in aa_status),
        "detections": sum(s == "fail" for s in slowed_status),
        # Per metric comparison: how many A/A comparisons alarmed (fail or warn), and how
        # many slowed medians (latency_p50 of each scenario) were seen as a regression.
        "aa_metric_comparisons": len(aa_all),
        "aa_metric_fails": aa_all.count("fail"),
        "aa_metric_warns": aa_all.count("warn"),
        "slowed_p50_comparisons": len(slowed_median),
        "slowed_p50_fails": slowed_median.count("fail"),
        "slowed_p50_warns": slowed_median.count("warn"),
    }


# ---------------------------------------------------------------------------- commands


def _progress(message: str) -> None:
    print(f"perfci: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: runs stop, worktrees go."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _timestamped(kind: str) -> Path:
    return Path("reports") / f"{kind}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


def cmd_ab(args: argparse.Namespace) -> int:
    config = load_perf_config(args.config)
    repo = repo_root(Path.cwd())
    out_dir = args.out or _timestamped("ab")
    with _terminate_as_interrupt():
        outcome = run_ab(
            repo,
            args.base,
            args.candidate,
            args.pairs,
            args.profile,
            out_dir,
            config,
            seed=args.seed,
            scenarios=_scenarios(args),
            progress=_progress,
        )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(outcome.summary + "\n")
    print(outcome.judgement.headline)
    print(f"report: {out_dir / 'report.html'}")
    return outcome.judgement.exit_code


def cmd_baseline(args: argparse.Namespace) -> int:
    with _terminate_as_interrupt():
        outcome = refresh_baseline(
            repo_root(Path.cwd()), args.profile, args.out, progress=_progress
        )
    if outcome.archived is not None:
        _progress(f"previous baseline kept as {outcome.archived}")
    meta = outcome.results.run
    print(f"baseline: {outcome.installed} (commit {meta.git_commit}, {meta.created_at})")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    config = load_perf_config(args.config)
    slowdown = args.slowdown_ms
    if slowdown is None:
        slowdown = DEFAULT_SLOWDOWN_MS
        _progress(
            f"slowed candidate: +{slowdown} ms per search request (default, meant as ~10% of "
            "the smoke profile's p50; the measured p50 is printed below)"
        )
    else:
        _progress(f"slowed candidate: +{slowdown} ms per search request")
    out_dir = args.out or _timestamped("calibrate")
    with _terminate_as_interrupt():
        rounds = run_calibration(
            repo_root(Path.cwd()),
            args.ref,
            args.pairs,
            args.profile,
            slowdown,
            args.repeat,
            out_dir,
            config,
            seed=args.seed,
            scenarios=_scenarios(args),
            progress=_progress,
        )
    report = calibration_report(rounds, slowdown)
    (out_dir / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    width = max((len(k) for k in report["metrics"]), default=10)
    print(f"{'metric':{width}}  A/A statuses          slowed statuses")
    for key, sides in report["metrics"].items():
        print(f"{key:{width}}  {','.join(sides['aa']):20}  {','.join(sides['slowed'])}")
    p50 = report["base_p50_ms"]
    share = ", ".join(f"{100 * slowdown / v:.0f}%" if v > 0 else "n/a" for v in p50)
    print(
        f"delay {slowdown} ms = {share} of the base p50 ({', '.join(f'{v:.1f}' for v in p50)} ms)"
    )
    n = report["rounds"]
    print(f"false alarms (A/A verdict fail): {report['false_alarms']}/{n}")
    print(f"detections (slowed verdict fail): {report['detections']}/{n}")
    print(
        f"A/A metric comparisons: {report['aa_metric_fails']} fail, "
        f"{report['aa_metric_warns']} warn of {report['aa_metric_comparisons']}"
    )
    print(
        f"slowed p50 comparisons: {report['slowed_p50_fails']} fail, "
        f"{report['slowed_p50_warns']} warn of {report['slowed_p50_comparisons']}"
    )
    return 0


def _scenarios(args: argparse.Namespace) -> tuple[str, ...]:
    from ci.measure.profiles import check_scenarios

    return check_scenarios(tuple(args.scenario)) if args.scenario else ()


def _add_scenario_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only these scenarios of the profile (repeatable; default: all)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: expected at least 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ab``, ``baseline`` and ``calibrate`` to the ``perfci`` parser."""
    p = sub.add_parser("ab", help="A/B two revisions in interleaved pairs on this machine")
    p.add_argument("--base", required=True, help="git ref of the base revision")
    p.add_argument("--candidate", default="HEAD", help="git ref of the candidate (HEAD)")
    p.add_argument("--pairs", type=_positive_int, default=5, help="A/B pairs (default 5)")
    p.add_argument("--profile", default="smoke", help="load profile (default smoke)")
    p.add_argument("--seed", type=int, help="seed of the run order and the bootstrap")
    p.add_argument("--out", type=Path, help="report folder (default reports/ab-<time>)")
    p.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml")
    _add_scenario_option(p)
    p.set_defaults(handler=cmd_ab)

    p = sub.add_parser("baseline", help="run this checkout and install it as the baseline")
    p.add_argument("--profile", default="smoke", help="load profile (default smoke)")
    p.add_argument("--out", type=Path, default=Path("reports/baseline"), help="baseline folder")
    p.set_defaults(handler=cmd_baseline)

    p = sub.add_parser("calibrate", help="A/A and deliberately slowed runs: alarm rates")
    p.add_argument("--pairs", type=_positive_int, default=5, help="pairs per round (default 5)")
    p.add_argument("--profile", default="smoke", help="load profile (default smoke)")
    p.add_argument(
        "--slowdown-ms",
        type=_positive_int,
        help=f"delay added to each search of the slowed runs (default {DEFAULT_SLOWDOWN_MS})",
    )
    p.add_argument("--repeat", type=_positive_int, default=1, help="rounds (default 1)")
    p.add_argument("--ref", default="HEAD", help="revision to calibrate with (default HEAD)")
    p.add_argument("--seed", type=int, help="seed of the run order and the bootstrap")
    p.add_argument("--out", type=Path, help="folder (default reports/calibrate-<time>)")
    p.add_argument("--config", type=Path, default=Path("perf.toml"), help="perf.toml")
    _add_scenario_option(p)
    p.set_defaults(handler=cmd_calibrate)
