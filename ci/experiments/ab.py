"""``perfci ab``: two revisions in interleaved pairs on one machine, judged and rendered.

``ab`` checks out both revisions as detached git worktrees and runs each revision's own
``perfci run`` in interleaved pairs, each run on a fresh stack (its own ``PERFCI_HOME`` and
free ports). The order inside a pair is random (seedable) so that a drift of the machine
during the job (thermal, a noisy neighbour) hits both sides alike instead of always the
one that runs second. The results are then judged like any others (``ci.judge``).

The running itself (worktrees, fresh stacks, the one runner function tests replace) is
``ci.experiments.pairs``.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci.experiments.pairs import Progress, Runner, run_pairs, subprocess_runner, worktrees
from ci.settings import PerfConfig

if TYPE_CHECKING:  # judging pulls in numpy, scipy and matplotlib: imported when used
    from ci.judge.verdict import Judgement


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
    from ci.judge.verdict import judge
    from ci.render.environment import RenderContext
    from ci.render.report import write_report

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
