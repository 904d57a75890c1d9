"""The verdict: one status, what made it, the exit code; and the judgement that carries it.

Everything a report says about the outcome is decided here (status, counts, the headline's
words, the exit code); render only formats it.

Overall status: ``fail`` if any metric or SLA fails; else ``error`` if a statistic could
not be computed; else ``warn``; else ``inconclusive``; else ``pass`` (``improved`` counts
as pass). Exit codes (:func:`exit_code`): 0 for pass, warn and inconclusive (shown
clearly in the comment: too few runs is a property of the profile, not of the change),
1 for fail, 2 for error (the CLI also uses 2 for usage, config and input errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci.judge.bench import BenchmarkComparison
from ci.judge.compare import Comparison, Status, compare_runs, overall_status
from ci.judge.sla import SlaCheck, check_sla
from ci.results import RunResults, load_results
from ci.settings import PerfConfig


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    regressions: int
    warnings: int
    improvements: int
    inconclusive: int
    errors: int
    sla_failures: int

    @property
    def detail(self) -> str:
        """What made the status, most serious first: ``"2 regressions, 1 warning"``."""
        parts = []
        if self.regressions:
            parts.append(_plural(self.regressions, "regression"))
        if self.sla_failures:
            parts.append(_plural(self.sla_failures, "SLA failure"))
        if self.errors:
            parts.append(_plural(self.errors, "statistics error"))
        if self.warnings:
            parts.append(_plural(self.warnings, "warning"))
        if self.inconclusive:
            parts.append(f"{self.inconclusive} inconclusive")
        if self.improvements:
            parts.append(_plural(self.improvements, "improvement"))
        return ", ".join(parts) if parts else "no significant change"

    @property
    def headline(self) -> str:
        """One line: the verdict first, then what made it."""
        return f"Performance: {self.status.upper()} \u2014 {self.detail}"

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)


def verdict(
    comparison: Comparison | BenchmarkComparison | None, sla: Sequence[SlaCheck]
) -> Verdict:
    metrics = () if comparison is None else comparison.metrics
    return Verdict(
        status=overall_status(metrics, sla),
        regressions=sum(m.status == "fail" for m in metrics),
        warnings=sum(m.status == "warn" for m in metrics),
        improvements=sum(m.status == "improved" for m in metrics),
        inconclusive=sum(m.status == "inconclusive" for m in metrics),
        errors=sum(m.status == "error" for m in metrics),
        sla_failures=sum(c.status == "fail" for c in sla),
    )


def exit_code(status: Status) -> int:
    """0: pass, improved, warn, inconclusive; 1: fail; 2: error (see module docstring)."""
    return {"fail": 1, "error": 2}.get(status, 0)


@dataclass(frozen=True, slots=True)
class Judgement:
    """A comparison, its SLA checks and their verdict, with the runs they were judged from
    (the report's time-series plots show the first run of each side)."""

    comparison: Comparison
    sla: tuple[SlaCheck, ...]
    verdict: Verdict
    base: tuple[RunResults, ...]
    candidate: tuple[RunResults, ...]

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    @property
    def headline(self) -> str:
        return self.verdict.headline


def judgement(
    comparison: Comparison,
    sla: Sequence[SlaCheck],
    base: Sequence[RunResults] = (),
    candidate: Sequence[RunResults] = (),
) -> Judgement:
    """Bundle a comparison and SLA checks with the verdict they give."""
    return Judgement(
        comparison, tuple(sla), verdict(comparison, sla), tuple(base), tuple(candidate)
    )


def judge_runs(
    base: Sequence[RunResults],
    candidate: Sequence[RunResults],
    config: PerfConfig,
    seed: int | None = None,
) -> Judgement:
    """Compare and SLA-check runs already in memory."""
    comparison = compare_runs(base, candidate, config.compare, seed=seed)
    return judgement(comparison, check_sla(candidate, config.sla), base, candidate)


def judge(
    base: Sequence[Path], candidate: Sequence[Path], config: PerfConfig, seed: int | None = None
) -> Judgement:
    """Load (and validate) result files, then judge them."""
    base_runs = tuple(load_results(p) for p in base)
    cand_runs = tuple(load_results(p) for p in candidate)
    return judge_runs(base_runs, cand_runs, config, seed)
