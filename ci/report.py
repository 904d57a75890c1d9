"""Judge result files and write a report folder; everything here works from files alone.

A report folder holds the inputs it was judged from (``inputs/base-N.json``,
``inputs/candidate-N.json``), so that ``perfci comment`` on another runner re-validates and
re-judges them instead of trusting rendered text from an artifact.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci.compare import (
    Comparison,
    SlaCheck,
    Verdict,
    check_sla,
    compare_benchmarks,
    compare_runs,
    exit_code,
    verdict,
)
from ci.settings import PerfConfig
from ci.errors import ResultsError
from ci.render import (
    RenderContext,
    headline,
    render_comment,
    render_html_report,
    render_summary,
)
from ci.results import RunResults, load_results, read_json_file

INPUTS = "inputs"


@dataclass(frozen=True, slots=True)
class Judgement:
    comparison: Comparison
    sla: tuple[SlaCheck, ...]
    verdict: Verdict
    base: tuple[RunResults, ...]
    candidate: tuple[RunResults, ...]

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdict.status)

    @property
    def headline(self) -> str:
        return headline(self.verdict)


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders contribute every ``results.json`` under them, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob("results.json"))
            if not found:
                raise ResultsError(f"{path}: no results.json under this folder")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise ResultsError(f"{path}: no such file or folder")
    return out


def is_benchmark_file(path: Path) -> bool:
    data = read_json_file(path)
    return isinstance(data, dict) and "benchmarks" in data and "machine_info" in data


def judge(
    base: Sequence[Path], candidate: Sequence[Path], config: PerfConfig, seed: int | None = None
) -> Judgement:
    base_runs = tuple(load_results(p) for p in base)
    cand_runs = tuple(load_results(p) for p in candidate)
    comparison = compare_runs(base_runs, cand_runs, config.compare, seed=seed)
    sla = tuple(check_sla(cand_runs, config.sla))
    return Judgement(comparison, sla, verdict(comparison, sla), base_runs, cand_runs)


def write_report(
    out: Path,
    judgement: Judgement,
    context: RenderContext,
    base: Sequence[Path],
    candidate: Sequence[Path],
) -> dict[str, Path]:
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
        "html": out / "report.html",
        "verdict": out / "verdict.json",
    }
    files["comment"].write_text(render_comment(judgement.comparison, judgement.sla, context))
    files["summary"].write_text(render_summary(judgement.comparison, judgement.sla, context))
    files["html"].write_text(
        render_html_report(
            judgement.comparison, judgement.sla, context, judgement.base, judgement.candidate
        )
    )
    files["verdict"].write_text(
        json.dumps(
            {
                "status": judgement.verdict.status,
                "headline": judgement.headline,
                "exit_code": judgement.exit_code,
                "regressions": judgement.verdict.regressions,
                "sla_failures": judgement.verdict.sla_failures,
            },
            indent=2,
        )
    )
    return files


def report_inputs(report: Path) -> tuple[list[Path], list[Path]]:
    """The base and candidate files a report folder was judged from."""
    inputs = report / INPUTS

    def numbered(prefix: str) -> list[Path]:
        files = list(inputs.glob(f"{prefix}-*.json"))
        try:
            return sorted(files, key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        except ValueError as exc:
            raise ResultsError(f"{inputs}: unexpected file name among {files}") from exc

    base, cand = numbered("base"), numbered("candidate")
    if not base or not cand:
        raise ResultsError(
            f"{report}: not a report folder (expected {INPUTS}/base-N.json and "
            f"{INPUTS}/candidate-N.json, written by `perfci compare --report`)"
        )
    return base, cand


def compare_benchmark_files(
    base: Sequence[Path], candidate: Sequence[Path], config: PerfConfig, seed: int | None = None
) -> tuple[str, int]:
    """A plain-text table and exit code for pytest-benchmark JSON files."""
    result = compare_benchmarks(base, candidate, config.compare, seed=seed)
    lines = [f"{'benchmark':60} {'change':>9} {'interval':>21} status"]
    for m in result.metrics:
        est = "n/a" if m.change is None else f"{m.change * 100:+.1f}%"
        ci = (
            ""
            if m.ci_low is None or m.ci_high is None
            else f"[{m.ci_low * 100:+.1f}%, {m.ci_high * 100:+.1f}%]"
        )
        lines.append(f"{m.scenario + ' ' + m.metric:60.60} {est:>9} {ci:>21} {m.status}")
    return "\n".join(lines), exit_code(result.status)
