"""A run's report folder, rebuilt from the folder alone.

A run folder is self-contained: ``results.json`` holds everything its ``report.html`` shows,
so :func:`rerender_run` rebuilds the report from the folder and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from ci.errors import RenderError
from ci.render.html import render_run_report
from ci.results import load_results

RESULTS = "results.json"
REPORT = "report.html"


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
