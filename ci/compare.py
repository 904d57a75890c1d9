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
under 1 % (``tests/ci/test_compare.py`` simulates both). At that noise and n the two
requirements leave little room: more pairs is the only way to buy a sharper gate.

Why a warn needs ``p < a`` too: the percentile bootstrap of 5-10 pairs is overconfident
(its interval cannot reach beyond the observed effects), and an estimate beyond F alone is
what noise gives. Calibrated on this machine (``perfci calibrate --pairs 5``, smoke
profile): without the p-value condition, 12 of 48 A/A metric comparisons warned (spike's
p50 moved +189 % between identical runs); with it, none (README, "Calibration").

Why ``min_pairs = 5``: with n pairs the smallest one-sided Wilcoxon p is ``1/2**n``
(n = 4: 0.0625, n = 5: 0.031), so below 5 pairs a fail could never be reached at
``alpha = 0.05``; ``ci.config`` refuses such a setting.

Overall status: ``fail`` if any metric or SLA fails; else ``error`` if a statistic could
not be computed; else ``warn``; else ``inconclusive``; else ``pass`` (``improved`` counts
as pass). Exit codes (:func:`exit_code`): 0 for pass, warn and inconclusive (shown
clearly in the comment: too few runs is a property of the profile, not of the change),
1 for fail, 2 for error (the CLI also uses 2 for usage, config and input errors).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from ci.settings import KNOWN_METRICS, CompareConfig, MetricSpec, SlaConfig
from ci.errors import ComparisonError, MetadataMismatch, ResultsError
from ci.results import RunMeta, RunResults, ScenarioResult, json_path, read_json_file

Status = Literal["pass", "warn", "fail", "improved", "inconclusive", "error"]
FloatArray = npt.NDArray[np.float64]


def cpu_ms_per_request(s: ScenarioResult) -> float | None:
    """CPU time of every service process over the scenario, per request, in ms.

    Each sample's ``cpu_percent`` covers the time since that process's previous sample, so
    CPU seconds are the sum of ``cpu_percent / 100 * dt`` per process. None without samples.
    """
    if s.requests <= 0 or not s.resources.samples:
        return None
    last: dict[int, float] = {}
    cpu_s = 0.0
    for sample in sorted(s.resources.samples, key=lambda x: x.t):
        previous = last.get(sample.pid)
        if previous is not None:
            cpu_s += sample.cpu_percent / 100 * (sample.t - previous)
        last[sample.pid] = sample.t
    return 1000 * cpu_s / s.requests if cpu_s > 0 else None


_EXTRACTORS: dict[str, Callable[[ScenarioResult], float | None]] = {
    "latency_p50": lambda s: s.latency_ms.p50,
    "latency_p90": lambda s: s.latency_ms.p90,
    "latency_p95": lambda s: s.latency_ms.p95,
    "latency_p99": lambda s: s.latency_ms.p99,
    "throughput_rps": lambda s: s.throughput_rps,
    "error_rate": lambda s: s.error_rate,
    "ttfe_p50": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p50,
    "ttfe_p95": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p95,
    "ttfe_p99": lambda s: None if s.ttfe_ms is None else s.ttfe_ms.p99,
    "cache_hit_ratio": lambda s: None if s.cache is None else s.cache.hit_ratio,
    "peak_rss_mb": lambda s: s.resources.peak_rss_mb,
    "cpu_ms_per_request": cpu_ms_per_request,
}
assert set(_EXTRACTORS) == set(KNOWN_METRICS), "ci.config.KNOWN_METRICS out of sync"


#: Raw pytest-benchmark timings kept per side; the bootstrap cost grows with n.
MAX_RAW_SAMPLES = 5000


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


@dataclass(frozen=True, slots=True)
class ScenarioComparison:
    name: str
    metrics: tuple[MetricComparison, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    paired: bool
    base_runs: tuple[RunMeta, ...]
    candidate_runs: tuple[RunMeta, ...]
    scenarios: tuple[ScenarioComparison, ...]
    confidence: float
    resamples: int
    seed: int | None

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


@dataclass(frozen=True, slots=True)
class BenchmarkComparison:
    paired: bool
    base_files: tuple[str, ...]
    candidate_files: tuple[str, ...]
    metrics: tuple[MetricComparison, ...]

    @property
    def status(self) -> Status:
        return overall_status(self.metrics, ())


@dataclass(frozen=True, slots=True)
class SlaCheck:
    """An absolute gate on the candidate: ``value comparator limit`` must hold."""

    scenario: str
    name: str
    value: float
    limit: float
    comparator: Literal["<", ">"]
    runs: int
    status: Literal["pass", "fail", "skipped"]
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    regressions: int
    warnings: int
    improvements: int
    inconclusive: int
    errors: int
    sla_failures: int


def metric_values(runs: Sequence[RunResults], scenario: str, metric: str) -> list[float]:
    """The recorded figure of ``metric`` in ``scenario``, one per run that reports it."""
    extract = _EXTRACTORS[metric]
    values = (extract(r.scenario(scenario)) for r in runs if scenario in r.scenario_names)
    return [v for v in values if v is not None]


# -- verdict aggregation ------------------------------------------------------------------


def overall_status(metrics: Sequence[MetricComparison], sla: Sequence[SlaCheck]) -> Status:
    statuses = {m.status for m in metrics}
    if "fail" in statuses or any(c.status == "fail" for c in sla):
        return "fail"
    for status in ("error", "warn", "inconclusive"):
        if status in statuses:
            return status
    return "pass"


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
    """Compare candidate runs with base runs; paired when the counts are equal and > 1."""
    check_metadata(base, candidate)
    paired = len(base) == len(candidate) and len(base) > 1
    rng = np.random.default_rng(seed)
    scenarios: list[ScenarioComparison] = []
    for name in base[0].scenario_names:
        metrics: list[MetricComparison] = []
        for spec in config.metrics:
            b = [_EXTRACTORS[spec.name](r.scenario(name)) for r in base]
            c = [_EXTRACTORS[spec.name](r.scenario(name)) for r in candidate]
            if all(v is None for v in b) and all(v is None for v in c):
                continue  # the scenario does not report this metric
            metrics.append(_compare_metric(name, spec, b, c, paired, config, rng))
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


@dataclass(frozen=True, slots=True)
class _Estimate:
    est: float
    lo: float | None
    hi: float | None
    p: float | None


def _compare_metric(
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

    def result(status: Status, e: _Estimate | None, message: str | None) -> MetricComparison:
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
                estimate = _paired_estimate(c_eff - b_eff, config, rng)
            else:
                estimate = _unpaired_estimate(b_eff, c_eff, config, rng)
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


def _decide(spec: MetricSpec, e: _Estimate, fail: float, warn: float, alpha: float) -> Status:
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
    spec: MetricSpec, e: _Estimate | None
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


def hodges_lehmann(x: FloatArray) -> FloatArray:
    """Pseudo-median of each row of ``x`` (2-D: rows are samples)."""
    i, j = np.triu_indices(x.shape[1])
    walsh = (x[:, i] + x[:, j]) * 0.5
    # An in-place sort and a pick is about twice as fast as np.median on short rows.
    walsh.sort(axis=1)
    m = walsh.shape[1]
    if m % 2:
        return walsh[:, m // 2]
    return 0.5 * (walsh[:, m // 2 - 1] + walsh[:, m // 2])


def _bootstrap(
    statistic: Callable[[FloatArray], FloatArray],
    x: FloatArray,
    resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Bootstrap replicates of ``statistic`` over the rows of resampled ``x``, in chunks
    that keep memory bounded (Walsh averages grow as n**2)."""
    n = x.shape[0]
    width = max(n * (n + 1) // 2, n)
    chunk = max(1, 2_000_000 // width)
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = statistic(x[idx])
    return out


def _interval(replicates: FloatArray, confidence: float) -> tuple[float, float]:
    """One-sided lower and upper bounds, each at ``confidence`` (see module docstring)."""
    lo, hi = np.quantile(replicates, [1.0 - confidence, confidence])
    return float(lo), float(hi)


def _wilcoxon_p(effects: FloatArray) -> float:
    """One-sided Wilcoxon signed-rank p, H1: effects > 0 (candidate worse)."""
    if not np.any(effects != 0):
        return 1.0  # all pairs identical: no change, not an error
    result = stats.wilcoxon(effects, alternative="greater", zero_method="wilcox")
    p = float(result.pvalue)
    if not math.isfinite(p):
        raise ValueError(f"Wilcoxon test returned p = {p}")
    return p


def _mannwhitney_p(base: FloatArray, cand: FloatArray) -> float:
    """One-sided Mann-Whitney U p, H1: candidate values larger (worse)."""
    result = stats.mannwhitneyu(cand, base, alternative="greater")
    p = float(result.pvalue)
    if not math.isfinite(p):
        raise ValueError(f"Mann-Whitney test returned p = {p}")
    return p


def _paired_estimate(
    effects: FloatArray, config: CompareConfig, rng: np.random.Generator
) -> _Estimate:
    est = float(hodges_lehmann(effects[np.newaxis, :])[0])
    if effects.size < 2:
        return _Estimate(est, None, None, None)
    reps = _bootstrap(hodges_lehmann, effects, config.bootstrap_resamples, rng)
    lo, hi = _interval(reps, config.confidence)
    return _Estimate(est, lo, hi, _wilcoxon_p(effects))


def _row_median(x: FloatArray) -> FloatArray:
    return np.median(x, axis=1)


def _unpaired_estimate(
    base: FloatArray, cand: FloatArray, config: CompareConfig, rng: np.random.Generator
) -> _Estimate:
    est = float(np.median(cand) - np.median(base))
    if base.size < 2 or cand.size < 2:
        return _Estimate(est, None, None, None)
    reps = _bootstrap(_row_median, cand, config.bootstrap_resamples, rng) - _bootstrap(
        _row_median, base, config.bootstrap_resamples, rng
    )
    lo, hi = _interval(reps, config.confidence)
    return _Estimate(est, lo, hi, _mannwhitney_p(base, cand))


# -- SLA ----------------------------------------------------------------------------------


def check_sla(candidate: Sequence[RunResults], sla: SlaConfig) -> list[SlaCheck]:
    """Absolute gates on the candidate, per scenario, on the median over runs."""
    if not candidate:
        raise ComparisonError("no candidate runs to check against the SLA")
    checks: list[SlaCheck] = []
    names: list[str] = []
    for r in candidate:
        names.extend(n for n in r.scenario_names if n not in names)
    for name in names:
        scen = [r.scenario(name) for r in candidate if name in r.scenario_names]

        def gate(
            key: str,
            values: Sequence[float],
            limit: float,
            comparator: Literal["<", ">"],
            *,
            scenario: str = name,
        ) -> None:
            if not values:
                return
            value = float(np.median(values))
            ok = value < limit if comparator == "<" else value > limit
            checks.append(
                SlaCheck(
                    scenario, key, value, limit, comparator, len(values), "pass" if ok else "fail"
                )
            )

        gate("p95_ms", [s.latency_ms.p95 for s in scen], sla.p95_ms, "<")
        gate("p99_ms", [s.latency_ms.p99 for s in scen], sla.p99_ms, "<")
        gate("error_rate", [s.error_rate for s in scen], sla.error_rate, "<")
        _gate_hit_ratio(name, scen, sla, checks)
        memory = [s.memory for s in scen if s.memory is not None]
        if memory:
            slope = float(np.median([m.rss_slope_mb_per_10min for m in memory]))
            leaking = sum(m.leaking for m in memory)
            ok = slope < sla.rss_slope_mb_per_10min and not leaking
            checks.append(
                SlaCheck(
                    name,
                    "rss_slope_mb_per_10min",
                    slope,
                    sla.rss_slope_mb_per_10min,
                    "<",
                    len(memory),
                    "pass" if ok else "fail",
                    f"leak detected in {leaking} of {len(memory)} run(s)" if leaking else None,
                )
            )
    return checks


def _gate_hit_ratio(
    name: str, scen: Sequence[ScenarioResult], sla: SlaConfig, checks: list[SlaCheck]
) -> None:
    """Hit ratio > limit, on the runs whose cache saw enough lookups to be past its cold start."""
    cached = [s.cache for s in scen if s.cache is not None and s.cache.hit_ratio is not None]
    if not cached:
        return
    warm = [c for c in cached if c.hits + c.misses >= sla.cache_hit_min_lookups]
    if not warm:
        lookups = int(np.median([c.hits + c.misses for c in cached]))
        ratio = float(np.median([c.hit_ratio for c in cached if c.hit_ratio is not None]))
        checks.append(
            SlaCheck(
                name, "cache_hit_ratio", ratio, sla.cache_hit_ratio, ">", len(cached), "skipped",
                f"{lookups} lookups < sla.cache_hit_min_lookups {sla.cache_hit_min_lookups}: "
                "the cache is still warming up",
            )
        )  # fmt: skip
        return
    value = float(np.median([c.hit_ratio for c in warm if c.hit_ratio is not None]))
    status: Literal["pass", "fail"] = "pass" if value > sla.cache_hit_ratio else "fail"
    checks.append(
        SlaCheck(name, "cache_hit_ratio", value, sla.cache_hit_ratio, ">", len(warm), status)
    )


# -- pytest-benchmark files ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bench:
    group: str | None
    median: float
    data: tuple[float, ...] | None


def load_benchmark_file(path: str | os.PathLike[str]) -> dict[str, _Bench]:
    """Read a pytest-benchmark JSON file (untrusted): name -> figures."""
    source = os.fspath(path)
    data = read_json_file(source)

    def bad(where: list[str | int], what: str) -> ResultsError:
        return ResultsError(f"{source}: {json_path(where)}: {what}")

    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise bad([], "not a pytest-benchmark file (no 'benchmarks' array)")
    out: dict[str, _Bench] = {}
    for i, item in enumerate(data["benchmarks"]):
        where: list[str | int] = ["benchmarks", i]
        if not isinstance(item, dict):
            raise bad(where, "expected an object")
        name, group, st = item.get("name"), item.get("group"), item.get("stats")
        if not isinstance(name, str) or not name:
            raise bad([*where, "name"], f"expected a non-empty string, got {name!r:.80}")
        if group is not None and not isinstance(group, str):
            raise bad([*where, "group"], f"expected a string or null, got {group!r:.80}")
        if not isinstance(st, dict):
            raise bad([*where, "stats"], "expected an object")
        median = st.get("median")
        if not _is_positive_number(median):
            raise bad(
                [*where, "stats", "median"], f"expected a positive number, got {median!r:.80}"
            )
        assert isinstance(median, (int, float))
        raw = st.get("data")
        samples: tuple[float, ...] | None = None
        if raw is not None:
            if not isinstance(raw, list) or not raw or not all(_is_positive_number(v) for v in raw):
                raise bad(
                    [*where, "stats", "data"], "expected a non-empty array of positive numbers"
                )
            samples = tuple(float(v) for v in raw)
        if name in out:
            raise bad([*where, "name"], f"duplicate benchmark name {name!r}")
        out[name] = _Bench(group, float(median), samples)
    return out


def _is_positive_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def compare_benchmarks(
    base_json_paths: Sequence[str | os.PathLike[str]],
    cand_json_paths: Sequence[str | os.PathLike[str]],
    config: CompareConfig,
    *,
    seed: int | None = None,
) -> BenchmarkComparison:
    """Compare pytest-benchmark files per benchmark name (lower time is better).

    When every file holds raw timings (``--benchmark-save-data``) they are pooled per side
    and compared unpaired (at most ``MAX_RAW_SAMPLES`` per side, drawn at random); otherwise
    each file's median is one run, paired when the file counts are equal.
    """
    if not base_json_paths or not cand_json_paths:
        raise ComparisonError("compare_benchmarks needs at least one base and one candidate file")
    base = [load_benchmark_file(p) for p in base_json_paths]
    cand = [load_benchmark_file(p) for p in cand_json_paths]
    rng = np.random.default_rng(seed)
    spec = MetricSpec("time", "lower", "ratio")
    names: list[str] = []
    for f in [*base, *cand]:
        names.extend(n for n in f if n not in names)
    raw = all(b.data is not None for f in [*base, *cand] for b in f.values())
    paired = not raw and len(base) == len(cand) and len(base) > 1
    metrics: list[MetricComparison] = []
    for name in names:
        group = next(f[name].group for f in [*base, *cand] if name in f) or "benchmarks"
        b_has = [f[name] for f in base if name in f]
        c_has = [f[name] for f in cand if name in f]
        b_vals: list[float | None]
        c_vals: list[float | None]
        if raw:
            b_vals = list(_cap([v for b in b_has for v in b.data or ()], rng))
            c_vals = list(_cap([v for c in c_has for v in c.data or ()], rng))
        else:
            b_vals = [f[name].median if name in f else None for f in base]
            c_vals = [f[name].median if name in f else None for f in cand]
        m = _compare_metric(
            group, MetricSpec(name, spec.direction), b_vals, c_vals, paired, config, rng
        )
        metrics.append(m)
    return BenchmarkComparison(
        paired=paired,
        base_files=tuple(os.fspath(p) for p in base_json_paths),
        candidate_files=tuple(os.fspath(p) for p in cand_json_paths),
        metrics=tuple(metrics),
    )


def _cap(values: list[float], rng: np.random.Generator) -> list[float]:
    if len(values) <= MAX_RAW_SAMPLES:
        return values
    chosen = rng.choice(len(values), size=MAX_RAW_SAMPLES, replace=False)
    return [values[i] for i in sorted(chosen)]
