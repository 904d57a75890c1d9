"""``perfci gate`` (the PR check) and ``perfci calibrate`` (its real error rates; with
``--zoo``, its verdicts on the regression zoo's patches).

``perfci gate --base REF --candidate REF`` measures two commits; ``perfci gate --pr N ...``
(the perf-pr workflow) writes ``pr.json`` for the merge commit checked out at HEAD and, if
it merged, measures it against its first parent. ``perfci gate --rejudge DIR`` judges a
report folder's windows again under the rule its verdict file records.

Exit codes of ``gate``: 0 pass, 1 fail, 3 inconclusive (the verdict file exists in all
three); 2 a usage, configuration or input error, or a crash (no verdict file). With
``--pr``: 0 whenever a verdict (of any decision) or an untested ``pr.json`` was written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import EXIT_OK, progress, timestamped
from ci.errors import ConfigError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers
    from ci.judge.gate_folder import GateFolder
    from ci.results.duet import Side


def _machine_class() -> str:
    from ci.measure.collect import machine

    return machine().machine_class


def _github_output(**values: str) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in values.items())


def cmd_gate(args: argparse.Namespace) -> int:
    from ci.experiments.gate.checkout import describe_merge, resolve_sides
    from ci.experiments.worktrees import repo_root
    from ci.judge.gate_folder import GateFolder, dump_pr_record

    if args.rejudge is not None:
        return _rejudge(GateFolder(args.rejudge))
    repo = repo_root(args.repo)
    out = args.out or timestamped("gate")
    if args.pr is not None:
        if args.base or args.candidate:
            raise ConfigError(
                "perfci gate --pr measures HEAD^1 and HEAD: leave out --base/--candidate"
            )
        if args.pr_head is None or args.run_id is None or args.run_attempt is None:
            raise ConfigError("perfci gate --pr needs --pr-head, --run-id and --run-attempt")
        merged = args.merge_checkout == "success"
        record = describe_merge(repo, args.pr, args.pr_head, args.run_id, args.run_attempt, merged)
        dump_pr_record(record, GateFolder(out).pr)
        _github_output(outcome=record.outcome)
        progress(f"pull request #{record.pr}: {record.outcome} {record.reason or ''}".rstrip())
        if record.outcome != "tested":
            return EXIT_OK  # the poster reports it from pr.json
        assert record.base_sha is not None, "a tested record names its base"
        assert record.merge_sha is not None, "a tested record names its merge commit"
        commits: dict[Side, str] = {"base": record.base_sha, "candidate": record.merge_sha}
        code = _gate(args, repo, out, commits, {"base": "HEAD^1", "candidate": "HEAD"})
        # a verdict of any decision is the check's business; only no verdict fails the job
        return EXIT_OK if code in (0, 1, 3) else code
    if not args.base or not args.candidate:
        raise ConfigError("perfci gate needs --base and --candidate (or --rejudge DIR, or --pr N)")
    resolved = resolve_sides(repo, args.base, args.candidate)
    return _gate(args, repo, out, resolved, {"base": args.base, "candidate": args.candidate})


def _gate(
    args: argparse.Namespace,
    repo: Path,
    out: Path,
    commits: dict[Side, str],
    refs: dict[Side, str],
) -> int:
    """The gate with the harness ``ci.experiments.gate.checkout`` picks (once)."""
    from ci.experiments.gate.checkout import (
        BASE_REVISION,
        harness_revision,
        harness_source,
        run_in_base,
        running_tree,
    )
    from ci.experiments.gate.runner import GateRequest, run_gate
    from ci.judge.gate_folder import GateFolder
    from ci.judge.gate_verdict import Revision
    from ci.settings import load_perf_config

    here = running_tree()
    if args.harness_revision is not None:  # picked by the caller: this is the base's harness
        source, revision = args.harness_source or BASE_REVISION, args.harness_revision
    else:
        picked = harness_source(repo, commits["base"])
        if picked == BASE_REVISION:
            passed = ["--out", str(out.resolve())]
            passed += ["--seed", str(args.seed)] if args.seed is not None else []
            passed += ["--no-shapes"] if args.no_shapes else []
            passed += ["--config", str(args.config.resolve())] if args.config else []
            return run_in_base(repo, commits, passed, repo / ".perfci" / "venvs", progress)
        source = picked or BASE_REVISION
        revision = harness_revision(here)
    request = GateRequest(
        repo=repo,
        base=Revision(refs["base"], commits["base"]),
        candidate=Revision(refs["candidate"], commits["candidate"]),
        out_dir=out,
        config=load_perf_config(args.config),
        machine_class=_machine_class(),
        harness_source=source,
        harness_revision=revision,
        seed=args.seed,
        shapes=not args.no_shapes,
    )
    verdict = run_gate(request, progress)
    folder = GateFolder(out)
    summary = folder.summary.read_text(encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(summary + "\n")
    print(summary)
    print(verdict.headline)
    print(f"verdict: {folder.verdict}; report: {folder.report}")
    return verdict.exit_code


def _rejudge(folder: GateFolder) -> int:
    """Judge a gate folder's windows again under the rule its verdict file records.

    Prints the conclusion; exit 0 when the judgement is the verdict's, 1 when not.
    """
    from ci.judge.gate_decision import rejudge
    from ci.judge.gate_verdict import load_verdict
    from ci.results.duet import load_duet

    verdict = load_verdict(folder.verdict)
    judgement = rejudge(verdict, load_duet(folder.windows))
    same = judgement == verdict.judgement
    print(f"conclusion: {judgement.conclusion}")
    print(
        f"windows: {judgement.decision} after {judgement.pairs} windows; the verdict file says "
        f"{verdict.judgement.decision} ({'the same' if same else 'DIFFERENT'})"
    )
    return EXIT_OK if same else 1


def _zoo(args: argparse.Namespace) -> int:
    """Each zoo patch on HEAD, gated against HEAD; the table expected against actual."""
    from ci.experiments.gate.checkout import BASE_REVISION
    from ci.experiments.gate.runner import GateRequest, run_gate
    from ci.experiments.gate.zoo import ZOO_JSON, ZOO_MD, read_zoo, run_zoo, select
    from ci.experiments.worktrees import repo_root
    from ci.judge.gate_verdict import Revision
    from ci.settings import load_perf_config

    repo = repo_root(Path.cwd())
    patches = select(read_zoo(repo), args.only or ())
    config = load_perf_config(args.config)
    machine_class = _machine_class()
    out = args.out or timestamped("zoo")

    def gate_one(parent: str, candidate: str, folder: Path) -> tuple[str, tuple[str, ...]]:
        request = GateRequest(
            repo=repo,
            base=Revision("HEAD", parent),
            candidate=Revision(f"HEAD + {folder.name}.patch", candidate),
            out_dir=folder,
            config=config,
            machine_class=machine_class,
            harness_source=BASE_REVISION,
            harness_revision=parent,
            seed=args.seed,
        )
        verdict = run_gate(request, progress)
        return verdict.judgement.decision, verdict.judgement.reasons

    results = run_zoo(repo, patches, out, gate_one, progress)
    print((out / ZOO_MD).read_text(encoding="utf-8"), end="")
    print(f"figures: {out / ZOO_JSON}")
    return EXIT_OK if all(r.ok for r in results) else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.zoo:
        return _zoo(args)
    if args.only:
        raise ConfigError("perfci calibrate --only names zoo patches: use it with --zoo")
    from ci.experiments.gate.calibrate import (
        CALIBRATION_FILE,
        CALIBRATION_MD,
        full_gate,
        run_calibration,
    )
    from ci.experiments.worktrees import repo_root
    from ci.judge.calibration import calibration_ok
    from ci.settings import load_perf_config

    repo = repo_root(Path.cwd())
    config = load_perf_config(args.config)
    out = args.out or timestamped("calibrate")
    gate_one = full_gate(repo, args.ref, config, _machine_class(), progress=progress)
    calibration = run_calibration(
        repo,
        args.ref,
        args.aa,
        args.slowed,
        args.slowdown,
        out,
        gate_one,
        seed=args.seed,
        cpu_fail_threshold=next(
            (m.fail_threshold for m in config.gate.rule.metrics if m.name == "cpu_ms_per_request"),
            None,
        ),
        progress=progress,
    )
    print((out / CALIBRATION_MD).read_text(encoding="utf-8"), end="")
    print(f"figures: {out / CALIBRATION_FILE}")
    return EXIT_OK if calibration_ok(calibration.summary) else 1


_CALIBRATE_DOC = """\
Many full gates (fresh stack, fresh service processes, each side's own venv, loader and
Valkey), each of a commit on --ref against --ref, as a pull request is gated:

  A/A      the candidate adds only a comment to service/search.py: a FAIL is a false alarm
  slowed   it also sets SEARCH_DEBUG_CPU_SLOWDOWN's default to --slowdown: a FAIL is a detection

Each verdict has its own seed, derived from --seed. Report folders and calibration.json /
calibration.md accumulate in --out; run again with the same --out to resume a stopped
campaign or to add verdicts (the same --ref, --seed and --slowdown).

With --zoo: each zoo/*.patch gated against HEAD instead (zoo.json, zoo.md).

Exit codes: 0 when no A/A verdict FAILed and at most 10 % of them were INCONCLUSIVE, 1
otherwise (--zoo: 1 when a patch misses its expected verdict or metric); 2 a usage,
configuration or input error, or a crash.
"""


def register(sub: Subparsers) -> None:
    """``gate`` and ``calibrate``."""
    p = sub.add_parser(
        "gate",
        help="the PR check: base and candidate side by side on one stack, one verdict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--base", help="git ref of the base (the merge commit's first parent)")
    p.add_argument("--candidate", help="git ref of the candidate (the merge commit)")
    p.add_argument("--out", type=Path, help="report folder (default reports/gate-<time>)")
    p.add_argument("--repo", type=Path, default=Path("."), help="the git repository (.)")
    p.add_argument("--config", type=Path, help="perf.toml (default: the running harness's)")
    p.add_argument("--seed", type=int, help="seed of the window order (default: drawn, recorded)")
    p.add_argument(
        "--harness-source",
        help="what the running harness is, for the verdict (set with --harness-revision)",
    )
    p.add_argument(
        "--harness-revision",
        help="commit of the running harness, which the caller picked: skip picking it",
    )
    p.add_argument("--no-shapes", action="store_true", help="skip the shape scenarios (no SLA)")
    p.add_argument(
        "--rejudge",
        type=Path,
        metavar="DIR",
        help="judge DIR's windows again under the rule in DIR's verdict; print the conclusion",
    )
    p.add_argument("--pr", type=int, help="the pull request whose merge commit is checked out")
    p.add_argument("--pr-head", help="the pull request's head commit the event named (--pr)")
    p.add_argument("--run-id", type=int, help="the workflow run's id (--pr)")
    p.add_argument("--run-attempt", type=int, help="the workflow run's attempt (--pr)")
    p.add_argument(
        "--merge-checkout",
        choices=("success", "failure"),
        default="success",
        help="whether refs/pull/N/merge could be checked out (--pr; default success)",
    )
    p.set_defaults(handler=cmd_gate)

    p = sub.add_parser(
        "calibrate",
        help="the gate's false-FAIL, INCONCLUSIVE and detection rates: A/A and slowed gates",
        description=_CALIBRATE_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--aa", type=int, default=30, help="A/A verdicts (default 30)")
    p.add_argument("--slowed", type=int, default=10, help="slowed verdicts (default 10)")
    p.add_argument(
        "--slowdown",
        type=float,
        default=0.10,
        help="extra CPU share each search of a slowed candidate burns (default 0.10)",
    )
    p.add_argument(
        "--ref", default="HEAD", help="revision to calibrate: every gate's base (default HEAD)"
    )
    p.add_argument(
        "--seed", type=int, help="seed every verdict's seed derives from (default: drawn, recorded)"
    )
    p.add_argument(
        "--out",
        type=Path,
        help="folder; verdicts accumulate there, a rerun resumes (default reports/calibrate-*)",
    )
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    p.add_argument(
        "--zoo",
        action="store_true",
        help="gate each zoo/*.patch against HEAD instead; write zoo.json and zoo.md (exit 1 "
        "when a patch misses its expected verdict or metric)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="with --zoo: only this patch (repeatable; default every one in zoo/README.md)",
    )
    p.set_defaults(handler=cmd_calibrate)
