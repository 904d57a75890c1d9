"""Pure statistics: compare base and candidate runs and return frozen verdict objects.

Runs, not requests, are the unit of statistics: a shared CI runner drifts between runs far
more than requests vary within one, so each run contributes one figure per metric.

Paired mode (A/B interleaved, ``len(base) == len(candidate)``, pairs in order): per pair
the *effect* is ``log(candidate / base)`` (ratio metrics) or ``candidate - base`` (absolute
metrics, e.g. an error rate whose base is often 0), oriented so that a positive effect is
always *worse*. The location estimate is the Hodges-Lehmann pseudo-median of the effects
(the median of the Walsh averages: the estimator that belongs to the Wilcoxon signed-rank
test, and much less noisy than the plain median at n = 10). Its confidence interval is a
percentile bootstrap over pairs; the p-value is the one-sided Wilcoxon signed-rank test
with H1 "candidate worse" (all-zero effects mean "no change": p = 1).

Unpaired mode (different counts): effect of the medians, bootstrap resampling each side
independently, one-sided Mann-Whitney U for the p-value.

The interval: ``lo`` and ``hi`` are one-sided bootstrap bounds, each at the configured
``confidence`` (0.95), so together they form a two-sided 90 % interval, the one reported.
The question asked is one-sided ("is the candidate worse by more than the tolerance?"),
and a one-sided bound is the one that answers it (as in equivalence testing).

Decision table, per metric (``W``/``F`` the warn/fail thresholds in the effect's units,
``log(1 + t)`` for ratio metrics; ``est`` the estimate):

=========================================  ==============
condition (first match wins)               status
=========================================  ==============
statistics routine raised                  ``error``
fewer than ``min_pairs`` pairs / runs      ``inconclusive``
``lo > W`` and ``est > F`` and ``p < a``   ``fail``
``hi < -W`` and ``est < -F``               ``improved``
(``lo > W`` or ``est > F``) and ``p < a``  ``warn``
otherwise                                  ``pass``
=========================================  ==============

Why ``lo > W`` rather than ``lo > F`` for a fail: with the noise measured on a shared
2-CPU runner (about 5 % per run, log-normal) and 10 pairs, "the whole interval beyond 5 %"
is reached for a real 10 % regression in well under half of the runs. Requiring that the
lower bound clears the *warn* band while the best estimate is beyond the *fail* threshold
detects a 10 % regression in about 93 % of comparisons and fails an A/A comparison in
under 1 % (``tests/ci/judge/test_compare.py`` simulates both). At that noise and n the two
requirements leave little room: more pairs is the only way to buy a sharper gate.

Why a warn needs ``p < a`` too: the percentile bootstrap of 5-10 pairs is overconfident
(its interval cannot reach beyond the observed effects), and an estimate beyond F alone is
what noise gives. Calibrated on this machine (``perfci calibrate --pairs 5``, smoke
profile): without the p-value condition, 12 of 48 A/A metric comparisons warned (spike's
p50 moved +189 % between identical runs); with it, none (README, "Calibration").

Why ``min_pairs = 5``: with n pairs the smallest one-sided Wilcoxon p is ``1/2**n``
(n = 4: 0.0625, n = 5: 0.031), so below 5 pairs a fail could never be reached at
``alpha = 0.05``; ``ci.settings`` refuses such a setting.

Overall status: ``fail`` if any metric or SLA fails; else ``error`` if a statistic could
not be computed; else ``warn``; else ``inconclusive``; else ``pass`` (``improved`` counts
as pass). Exit codes (:func:`exit_code`): 0 for pass, warn and inconclusive (shown
clearly in the comment: too few runs is a property of the profile, not of the change),
1 for fail, 2 for error (the CLI also uses 2 for usage, config and input errors).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ci.errors import ComparisonError, MetadataMismatch
from ci.judge.metrics import EXTRACTORS
from ci.judge.stats import Estimate, FloatArray, paired_estimate, unpaired_estimate
from ci.results import RunMeta, RunResults
from ci.settings import CompareConfig, MetricSpec

if TYPE_CHECKING:
    from ci.judge.sla import SlaCheck

Status = Literal["pass", "warn", "fail", "improved", "inconclusive", "error"]


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of one scenario (or one benchmark), base versus candidate.

    ``change`` is in display orientation (positive means the candidate figure is larger):
    ``candidate/base - 1`` for ratio metrics, ``candidate - base`` for absolute ones;
    ``ci_low``/``ci_high`` bound it (each a one-sided bound at the configured confidence).
    ``p_value`` is one-sided, H1 "candidate worse".
    """

    scenario: str
    metric: str
    direction: Literal["lower", "higher"]
    mode: Literal["ratio", "absolute"]
    paired: bool
    n_base: int
    n_candidate: int
    base_median: float | None
    candidate_median: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    status: Status
    fail_threshold: float
    warn_threshold: float
    message: str | None = None
    # The per-run figures behind the medians, for the report's distribution plots.
    base_values: tuple[float, ...] = ()
    candidate_values: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ScenarioComparison:
    name: str
    metrics: tuple[MetricComparison, ...]


#: The bootstrap's seed when none is given: re-judging the same files gives the same verdict.
DEFAULT_BOOTSTRAP_SEED = 0


@dataclass(frozen=True, slots=True)
class Comparison:
    paired: bool
    base_runs: tuple[RunMeta, ...]
    candidate_runs: tuple[RunMeta, ...]
    scenarios: tuple[ScenarioComparison, ...]
    confidence: float
    resamples: int
    seed: int | None  # the bootstrap's seed (always set by compare_runs)

    @property
    def interval_level(self) -> float:
        """Two-sided level of the reported intervals (0.90 for ``confidence = 0.95``)."""
        return 2.0 * self.confidence - 1.0

    @property
    def metrics(self) -> tuple[MetricComparison, ...]:
        return tuple(m for s in self.scenarios for m in s.metrics)

    @property
    def status(self) -> Status:
        return overall_status(self.metrics, ())


def overall_status(metrics: Sequence[MetricComparison], sla: Sequence[SlaCheck]) -> Status:
    statuses = {m.status for m in metrics}
    if "fail" in statuses or any(c.status == "fail" for c in sla):
        return "fail"
    for status in ("error", "warn", "inconclusive"):
        if status in statuses:
            return status
    return "pass"


# -- metadata -----------------------------------------------------------------------------


def check_metadata(base: Sequence[RunResults], candidate: Sequence[RunResults]) -> None:
    """Refuse runs whose profile, scenarios, corpus or machine class differ."""
    if not base:
        raise ComparisonError("no base runs to compare")
    if not candidate:
        raise ComparisonError("no candidate runs to compare")
    aspects: list[tuple[str, Callable[[RunResults], str]]] = [
        ("profile", lambda r: repr(r.run.profile)),
        ("scenario set", lambda r: repr(sorted(r.scenario_names))),
        ("corpus", lambda r: _corpus_key(r)),
        ("machine class", lambda r: repr(r.run.machine.machine_class)),
    ]
    problems: list[str] = []
    for label, key in aspects:
        for side, runs in (("base", base), ("candidate", candidate)):
            values = {key(r) for r in runs}
            if len(values) > 1:
                problems.append(f"{label} differs within {side} runs: {', '.join(sorted(values))}")
        b, c = key(base[0]), key(candidate[0])
        if b != c:
            problems.append(f"{label} differs: base {b}, candidate {c}")
    if problems:
        raise MetadataMismatch("; ".join(problems))


def _corpus_key(r: RunResults) -> str:
    c = r.run.corpus
    if c is None:
        return "none"
    return f"docs={c.docs} embedder={c.embedder!r} hash={c.hash!r}"


# -- comparing runs ------------------------------------------------------------------------


def compare_runs(
    base: Sequence[RunResults],
    candidate: Sequence[RunResults],
    config: CompareConfig,
    *,
    seed: int | None = None,
) -> Comparison:
    """Compare candidate runs with base runs; paired when the counts are equal and > 1.

    The bootstrap is always seeded (``seed`` None means :data:`DEFAULT_BOOTSTRAP_SEED`) and
    the seed used is recorded in the comparison, so judging the same files again gives the
    same intervals and the same verdict.
    """
    check_metadata(base, candidate)
    paired = len(base) == len(candidate) and len(base) > 1
    seed = DEFAULT_BOOTSTRAP_SEED if seed is None else seed
    rng = np.random.default_rng(seed)
    scenarios: list[ScenarioComparison] = []
    for name in base[0].scenario_names:
        metrics: list[MetricComparison] = []
        for spec in config.metrics:
            b = [EXTRACTORS[spec.name](r.scenario(name)) for r in base]
            c = [EXTRACTORS[spec.name](r.scenario(name)) for r in candidate]
            if all(v is None for v in b) and all(v is None for v in c):
                continue  # the scenario does not report this metric
            m = compare_metric(name, spec, b, c, paired, config, rng)
            metrics.append(
                dataclasses.replace(
                    m,
                    base_values=tuple(v for v in b if v is not None),
                    candidate_values=tuple(v for v in c if v is not None),
                )
            )
        scenarios.append(ScenarioComparison(name, tuple(metrics)))
    return Comparison(
        paired=paired,
        base_runs=tuple(r.run for r in base),
        candidate_runs=tuple(r.run for r in candidate),
        scenarios=tuple(scenarios),
        confidence=config.confidence,
        resamples=config.bootstrap_resamples,
        seed=seed,
    )


def compare_metric(
    scenario: str,
    spec: MetricSpec,
    base: Sequence[float | None],
    cand: Sequence[float | None],
    paired: bool,
    config: CompareConfig,
    rng: np.random.Generator,
) -> MetricComparison:
    fail = config.fail_threshold if spec.fail_threshold is None else spec.fail_threshold
    warn = config.warn_threshold if spec.warn_threshold is None else spec.warn_threshold
    notes: list[str] = []
    if paired:
        pairs = [(b, c) for b, c in zip(base, cand, strict=True) if b is not None and c is not None]
        if len(pairs) < len(base):
            notes.append(f"{len(base) - len(pairs)} pair(s) lack this metric")
        b_vals = [p[0] for p in pairs]
        c_vals = [p[1] for p in pairs]
    else:
        b_vals = [v for v in base if v is not None]
        c_vals = [v for v in cand if v is not None]
        if len(b_vals) < len(base) or len(c_vals) < len(cand):
            notes.append("some runs lack this metric")
    n = min(len(b_vals), len(c_vals))

    def result(status: Status, e: Estimate | None, message: str | None) -> MetricComparison:
        change, lo, hi = _display(spec, e)
        text = "; ".join([*notes, message] if message else notes) or None
        return MetricComparison(
            scenario=scenario,
            metric=spec.name,
            direction=spec.direction,
            mode=spec.mode,
            paired=paired,
            n_base=len(b_vals),
            n_candidate=len(c_vals),
            base_median=float(np.median(b_vals)) if b_vals else None,
            candidate_median=float(np.median(c_vals)) if c_vals else None,
            change=change,
            ci_low=lo,
            ci_high=hi,
            p_value=None if e is None else e.p,
            status=status,
            fail_threshold=fail,
            warn_threshold=warn,
            message=text,
        )

    try:
        estimate = None
        if n >= 1:
            b_eff = _effect_values(spec, b_vals, "base")
            c_eff = _effect_values(spec, c_vals, "candidate")
            if paired:
                effects = np.asarray(c_eff - b_eff, dtype=np.float64)
                estimate = paired_estimate(effects, config, rng)
            else:
                estimate = unpaired_estimate(b_eff, c_eff, config, rng)
    except Exception as exc:  # an error is reported as such, never as a verdict
        return result("error", None, f"statistics failed: {type(exc).__name__}: {exc}")
    if n < config.min_pairs or estimate is None:
        unit = "pairs" if paired else "runs on the smaller side"
        return result("inconclusive", estimate, f"{n} {unit}; at least {config.min_pairs} needed")
    return result(_decide(spec, estimate, fail, warn, config.alpha), estimate, None)


def _effect_values(spec: MetricSpec, values: Sequence[float], side: str) -> FloatArray:
    """Per-run values on the effect scale, oriented so that larger is worse."""
    arr = np.asarray(values, dtype=np.float64)
    if spec.mode == "ratio":
        bad = [v for v in values if not v > 0]
        if bad:
            raise ValueError(
                f"{side} value {bad[0]!r} of {spec.name} is not positive; a ratio needs "
                "positive values"
            )
        arr = np.log(arr)
    return arr if spec.direction == "lower" else -arr


def _decide(spec: MetricSpec, e: Estimate, fail: float, warn: float, alpha: float) -> Status:
    if spec.mode == "ratio":
        f, w = math.log1p(fail), math.log1p(warn)
    else:
        f, w = fail, warn
    lo = -math.inf if e.lo is None else e.lo
    hi = math.inf if e.hi is None else e.hi
    if lo > w and e.est > f and e.p is not None and e.p < alpha:
        return "fail"
    if hi < -w and e.est < -f:
        return "improved"
    if (lo > w or e.est > f) and e.p is not None and e.p < alpha:
        return "warn"
    return "pass"


def _display(
    spec: MetricSpec, e: Estimate | None
) -> tuple[float | None, float | None, float | None]:
    """Map an oriented effect estimate back to 'candidate relative to base'."""
    if e is None:
        return None, None, None
    sign = 1.0 if spec.direction == "lower" else -1.0

    def conv(x: float) -> float:
        return math.expm1(sign * x) if spec.mode == "ratio" else sign * x

    change = conv(e.est)
    if e.lo is None or e.hi is None:
        return change, None, None
    a, b = conv(e.lo), conv(e.hi)
    return change, min(a, b), max(a, b)
