"""``perfci gate`` (the PR check) and ``perfci calibrate`` (its real error rates).

Exit codes of ``gate``: 0 pass, 1 fail, 3 inconclusive (the verdict file exists in all
three); 2 a usage, configuration or input error, or a crash (no verdict file).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.common import EXIT_OK, progress, timestamped
from ci.errors import ConfigError

if TYPE_CHECKING:
    from ci.cli.common import Subparsers

CURRENT_CHECKOUT = "current checkout (base predates the gate)"


def _machine_class() -> str:
    from ci.measure.collect import machine

    return machine().machine_class


def cmd_gate(args: argparse.Namespace) -> int:
    from ci.experiments.gate.checkout import harness_revision
    from ci.experiments.gate.runner import GateRequest, run_gate
    from ci.experiments.pairs import repo_root
    from ci.settings import load_perf_config

    if args.rejudge is not None:
        return _rejudge(args.rejudge, args.config)
    if not args.base or not args.candidate:
        raise ConfigError("perfci gate needs --base and --candidate (or --rejudge DIR)")
    config = load_perf_config(args.config)
    repo = repo_root(args.repo)
    out = args.out or timestamped("gate")
    request = GateRequest(
        repo=repo,
        base_ref=args.base,
        candidate_ref=args.candidate,
        out_dir=out,
        config=config,
        machine_class=_machine_class(),
        harness_source=args.harness_source,
        harness_revision=args.harness_revision or harness_revision(Path(__file__).parent),
        seed=args.seed,
        shapes=not args.no_shapes,
    )
    verdict = run_gate(request, progress)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(summary + "\n")
    print(summary)
    print(verdict.headline)
    print(f"verdict: {out / 'verdict.json'}; report: {out / 'report.html'}")
    return verdict.exit_code


def _rejudge(folder: Path, config_path: Path | None) -> int:
    """Judge a gate folder's windows.json again and compare with its verdict.json.

    The rule comes from the verdict file itself (its primary metrics, alpha, looks), so a
    folder re-judges alone, on any machine; ``--config`` only fills what an older verdict
    does not record.
    """
    import dataclasses

    from ci.judge.duet import judge_duet
    from ci.judge.gate_verdict import load_verdict
    from ci.results.duet import load_duet
    from ci.settings import load_perf_config
    from ci.settings.gate import GateMetric

    verdict = load_verdict(folder / "verdict.json")
    rule = verdict.rule
    config = dataclasses.replace(
        load_perf_config(config_path).gate,
        alpha=rule.alpha,
        pass_alpha=rule.pass_alpha,
        looks=rule.looks,
        min_tail_samples=rule.min_tail_samples,
        report_threshold=rule.report_threshold,
        report_alpha=rule.report_alpha,
        **(
            {"metrics": tuple(
                GateMetric(m.name, m.direction, m.fail_threshold, m.mode)  # type: ignore[arg-type]
                for m in rule.metrics
            )}
            if rule.metrics
            else {}
        ),
    )  # fmt: skip
    judgement = judge_duet(load_duet(folder / "windows.json"), config)
    same = judgement.decision == verdict.statistical_decision
    shown = "inconclusive" if judgement.decision == "continue" else judgement.decision
    print(
        f"windows: {shown} after {judgement.windows} windows; the verdict file says "
        f"{verdict.statistical_decision} ({'the same' if same else 'DIFFERENT'})"
    )
    return EXIT_OK if same else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ci.experiments.gate.calibrate import CALIBRATION_FILE, run_calibration
    from ci.experiments.pairs import repo_root
    from ci.render.gate_calibration import calibration_table
    from ci.settings import load_perf_config

    config = load_perf_config(args.config)
    out = args.out or timestamped("calibrate")
    run_calibration(
        repo_root(Path.cwd()),
        args.ref,
        args.aa,
        args.slowed,
        args.slowdown,
        out,
        config,
        seed=args.seed,
        progress=progress,
    )
    data = json.loads((out / CALIBRATION_FILE).read_text())
    print(calibration_table(data["summary"], args.slowdown))
    print(f"figures: {out / CALIBRATION_FILE}")
    return EXIT_OK


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
        help="what the running harness is, for the verdict (nox -s pr sets it; default: "
        "'base revision' when the harness's commit is the base's)",
    )
    p.add_argument("--harness-revision", help="commit of the running harness (nox -s pr sets it)")
    p.add_argument("--no-shapes", action="store_true", help="skip the shape scenarios (no SLA)")
    p.add_argument(
        "--rejudge", type=Path, metavar="DIR", help="judge DIR/windows.json again; compare"
    )
    p.set_defaults(handler=cmd_gate)

    p = sub.add_parser("calibrate", help="A/A and slowed gate verdicts: alarm and detection rates")
    p.add_argument("--aa", type=int, default=20, help="A/A verdicts (default 20)")
    p.add_argument("--slowed", type=int, default=20, help="slowed verdicts (default 20)")
    p.add_argument(
        "--slowdown",
        type=float,
        default=0.10,
        help="extra CPU share each search of the slowed service burns (default 0.10)",
    )
    p.add_argument("--ref", default="HEAD", help="revision to calibrate with (default HEAD)")
    p.add_argument("--seed", type=int, help="seed of the verdict order and window orders")
    p.add_argument(
        "--out", type=Path, help="folder; verdicts accumulate there (default reports/calibrate-*)"
    )
    p.add_argument("--config", type=Path, help="perf.toml (default: the repository's)")
    p.set_defaults(handler=cmd_calibrate)
