"""``perfci calibrate``: how often does the gate cry wolf, and does it see a known slowdown?

Per pair it runs HEAD three times in random order: a base, an identical candidate (A/A)
and a candidate slowed by ``SEARCH_DEBUG_REQUEST_DELAY_MS`` (a service setting that sleeps
that long in every search request). The A/A and the slowed comparison share the base runs,
which saves a third of the runs and leaves both comparisons paired.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.errors import ConfigError
from ci.experiments.pairs import (
    Checkout,
    Progress,
    Runner,
    run_pairs,
    subprocess_runner,
    worktrees,
)
from ci.settings import PerfConfig

if TYPE_CHECKING:
    from ci.judge.verdict import Judgement

DEFAULT_SLOWDOWN_MS = 2  # about 10 % of a search's median on the smoke profile


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
    from ci.judge.verdict import judge

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
    from ci.judge.verdict import verdict

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
