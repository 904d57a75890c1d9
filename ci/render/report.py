"""Report folders: a comparison's (from its judgement) and a run's (from its folder alone).

A comparison report folder holds the inputs it was judged from (``inputs/base-N.json``,
``inputs/candidate-N.json``, see :mod:`ci.judge.inputs`), so that ``perfci comment`` on
another runner re-validates and re-judges them instead of trusting rendered text.

A run folder is self-contained: ``results.json`` holds everything its ``report.html`` shows,
so :func:`rerender_run` rebuilds the report from the folder and nothing else.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from ci.errors import RenderError
from ci.judge.inputs import INPUTS
from ci.judge.verdict import Judgement
from ci.render.environment import RenderContext
from ci.render.html import render_html_report, render_run_report
from ci.render.markdown import render_comment, render_summary
from ci.results import load_results

RESULTS = "results.json"
REPORT = "report.html"


def write_report(
    out: Path,
    judgement: Judgement,
    context: RenderContext,
    base: Sequence[Path],
    candidate: Sequence[Path],
) -> dict[str, Path]:
    """Write comment.md, summary.md, report.html, verdict.json and the inputs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / INPUTS
    if inputs.exists():
        shutil.rmtree(inputs)
    inputs.mkdir()
    for i, path in enumerate(base, 1):
        shutil.copyfile(path, inputs / f"base-{i}.json")
    for i, path in enumerate(candidate, 1):
        shutil.copyfile(path, inputs / f"candidate-{i}.json")
    files = {
        "comment": out / "comment.md",
        "summary": out / "summary.md",
        "html": out / REPORT,
        "verdict": out / "verdict.json",
    }
    files["comment"].write_text(render_comment(judgement, context))
    files["summary"].write_text(render_summary(judgement, context))
    files["html"].write_text(render_html_report(judgement, context))
    v = judgement.verdict
    files["verdict"].write_text(
        json.dumps(
            {
                "status": v.status,
                "headline": v.headline,
                "exit_code": v.exit_code,
                "regressions": v.regressions,
                "sla_failures": v.sla_failures,
            },
            indent=2,
        )
    )
    return files


def rerender_run(run_dir: Path) -> Path:
    """Render ``run_dir/report.html`` from ``run_dir/results.json``; return its path.

    Files the diagnostics link to that are not in the folder are listed without a link.
    """
    if not run_dir.is_dir():
        raise RenderError(f"{run_dir}: not a folder (expected a run folder of `perfci run`)")
    results = load_results(run_dir / RESULTS)
    links = results.diagnostics.profiles if results.diagnostics is not None else ()
    missing = {link.path for link in links if not (run_dir / link.path).is_file()}
    target = run_dir / REPORT
    target.write_text(render_run_report(results, missing), encoding="utf-8")
    return target
