"""The exact merge of N k6 runners' raw CSV files into one scenario result.

Every runner's gzip CSV is streamed once; the samples of each metric are kept per metric and
per scenario, so every aggregate is computed over all samples of all runners:

==============  =========================================================================
aggregate       over the merged samples
==============  =========================================================================
``p(N)``        k6's own formula (:func:`k6_percentile`): sorted values, linear at p·(n-1)
``med``         ``p(50)``; ``avg``, ``min``, ``max`` over all samples
``count``       a counter: the sum of its values; a trend: its number of samples
``rate``        a counter: its sum over the global window; a rate metric: non-zero share
==============  =========================================================================

The global window runs from the first sample of any runner to the last. Thresholds are
judged once, here, on the merged samples (the runners ran with ``--no-thresholds``), so a
runner's own exit code 99 means nothing. :func:`check_invariants` refuses a merge that
cannot be right and names the runner.
"""

from __future__ import annotations

import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ci.errors import RunError
from ci.measure.collect import k6_percentile
from ci.measure.k6 import K6Summary, RawSamples, csv_rows, parse_go_duration
from ci.results import LatencySummary, ThresholdOutcome

US_PER_S = 1_000_000
COUNTERS = frozenset(
    {"http_reqs", "iterations", "dropped_iterations", "data_sent", "data_received"}
)
TRENDS = frozenset(
    {
        "http_req_duration", "http_req_blocked", "http_req_connecting", "http_req_sending",
        "http_req_waiting", "http_req_receiving", "http_req_tls_handshaking",
        "iteration_duration", "group_duration",
    }
)  # fmt: skip
KEPT = frozenset({"http_req_duration", "http_req_failed", "search_sse_ttfe"})
# The columns k6's CSV output names; every other tag is in ``extra_tags`` as ``k=v&k=v``.
_SKIP = frozenset({"metric_name", "timestamp", "metric_value", "extra_tags", "metadata"})


@dataclass(frozen=True, slots=True)
class RunnerFigures:
    """What one runner's file held: its samples, its window, its own counts."""

    runner: int
    path: Path
    samples: int
    requests: int  # the sum of its http_reqs
    durations: int  # its http_req_duration samples
    iterations: int
    dropped: int
    first_us: int | None
    last_us: int | None


class Merged:
    """All samples of all runners, by (metric, tags); built by :func:`merge_files`.

    Kept: every sample of the latency, failure and TTFE metrics and of every metric a
    threshold names; counters as sums. Keys are ``metric``, ``metric{scenario:name}`` and
    each threshold's own key (``metric{tag:value,...}``).
    """

    def __init__(self, selectors: Iterable[str] = ()) -> None:
        self.values: dict[str, array[float]] = defaultdict(lambda: array("d"))
        self.sums: dict[str, float] = defaultdict(float)
        self.runners: list[RunnerFigures] = []
        self._selectors = {s: _selector(s) for s in selectors}
        self._kept = KEPT | {metric for metric, _ in self._selectors.values()}
        self.durations: list[tuple[int, float]] = []  # (unix s, ms), setup() excluded
        self.failed: list[tuple[int, float]] = []
        self.ttfe: list[float] = []

    def add_file(self, runner: int, path: Path) -> RunnerFigures:
        counts: dict[str, float] = defaultdict(float)
        samples = durations = 0
        first: int | None = None
        last: int | None = None
        for n, row in enumerate(csv_rows(path), start=2):
            name = row.get("metric_name") or ""
            try:
                t_us = int(row["timestamp"])
                value = float(row["metric_value"])
            except (KeyError, TypeError, ValueError) as exc:
                raise RunError(
                    f"runner {runner}: {path}: line {n}: bad sample (K6_CSV_TIME_FORMAT must be "
                    f"unix_micro): {exc}"
                ) from exc
            samples += 1
            first = t_us if first is None else min(first, t_us)
            last = t_us if last is None else max(last, t_us)
            scenario = row.get("scenario") or ""
            if name in COUNTERS or name in self._kept:
                keys = [name, f"{name}{{scenario:{scenario}}}"] if scenario else [name]
                keys += [
                    key
                    for key, (metric, tags) in self._selectors.items()
                    if metric == name and key not in keys and _matches(row, tags)
                ]
                for key in keys:
                    if name in COUNTERS:
                        self.sums[key] += value
                    else:
                        self.values[key].append(value)
            if name in COUNTERS:
                counts[name] += value
            if name == "http_req_duration":
                durations += 1
            if (row.get("group") or "").startswith("::setup"):
                continue
            second = t_us // US_PER_S
            if name == "http_req_duration":
                self.durations.append((second, value))
            elif name == "http_req_failed":
                self.failed.append((second, value))
            elif name == "search_sse_ttfe":
                self.ttfe.append(value)
        figures = RunnerFigures(
            runner, path, samples, round(counts["http_reqs"]), durations,
            round(counts["iterations"]), round(counts["dropped_iterations"]), first, last,
        )  # fmt: skip
        self.runners.append(figures)
        return figures

    @property
    def window_s(self) -> float:
        firsts = [r.first_us for r in self.runners if r.first_us is not None]
        lasts = [r.last_us for r in self.runners if r.last_us is not None]
        if not firsts or not lasts:
            return 0.0
        return (max(lasts) - min(firsts)) / US_PER_S

    def sorted_values(self, key: str) -> npt.NDArray[np.float64]:
        return np.sort(np.frombuffer(self.values.get(key, array("d")), dtype=np.float64))

    def aggregate(self, key: str, agg: str) -> float:
        """``agg`` (``p(95)``, ``med``, ``avg``, ``min``, ``max``, ``count``, ``rate``) of
        the merged samples of ``key`` (a metric, optionally ``{tag:value,...}``)."""
        metric = key.split("{", 1)[0]
        data = self.sorted_values(key)
        if agg.startswith("p(") and agg.endswith(")"):
            return k6_percentile(data, float(agg[2:-1]) / 100)
        if agg == "med":
            return k6_percentile(data, 0.5)
        if agg in ("min", "max", "avg"):
            if not len(data):
                return 0.0
            return float({"min": data[0], "max": data[-1], "avg": data.sum() / len(data)}[agg])
        if metric in COUNTERS and agg in ("count", "rate"):
            total = self.sums.get(key, 0.0)
            return total if agg == "count" else total / self.window_s if self.window_s else 0.0
        if agg == "count":
            return float(len(data)) if metric in TRENDS else float(data.sum())
        if agg == "rate":
            return float(np.count_nonzero(data)) / len(data) if len(data) else 0.0
        raise RunError(f"threshold aggregate {agg!r} of {key} is not one the merge computes")

    def trend(self, key: str) -> LatencySummary | None:
        data = self.sorted_values(key)
        if not len(data):
            return None
        p = [k6_percentile(data, q / 100) for q in (50, 90, 95, 99, 99.9)]
        return LatencySummary(
            p50=p[0], p90=p[1], p95=p[2], p99=p[3], p999=p[4],
            maximum=float(data[-1]), minimum=float(data[0]), mean=float(data.sum() / len(data)),
        )  # fmt: skip


def _selector(key: str) -> tuple[str, dict[str, str]]:
    found = re.fullmatch(r"([^{}]+)(?:\{([^{}]*)\})?", key.strip())
    if not found:
        raise RunError(f"threshold metric {key!r} is not name or name{{tag:value,...}}")
    tags: dict[str, str] = {}
    for part in filter(None, (found.group(2) or "").split(",")):
        name, sep, value = part.partition(":")
        if not sep:
            raise RunError(f"threshold metric {key!r}: tag {part!r} is not tag:value")
        tags[name.strip()] = value.strip()
    return found.group(1).strip(), tags


def _matches(row: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    extra = dict(p.partition("=")[::2] for p in (row.get("extra_tags") or "").split("&") if p)
    for name, value in tags.items():
        have = row.get(name) if name not in _SKIP else None
        if (have if have is not None else extra.get(name)) != value:
            return False
    return True


def merge_files(files: Sequence[Path], thresholds: Mapping[str, Any] | None = None) -> Merged:
    """Stream every runner's CSV (runner ``i`` is ``files[i-1]``) into one :class:`Merged`."""
    merged = Merged((thresholds or {}).keys())
    for i, path in enumerate(files, start=1):
        merged.add_file(i, path)
    return merged


# -- thresholds, judged once --------------------------------------------------------------------

_EXPRESSION = re.compile(
    r"\s*(p\([0-9.]+\)|med|avg|min|max|count|rate)\s*(<=|>=|==|!=|<|>)\s*(\S+)"
)


def judge_thresholds(merged: Merged, thresholds: Mapping[str, Any]) -> tuple[ThresholdOutcome, ...]:
    """The script's thresholds (``k6 inspect``) judged on the merged samples."""
    outcomes = []
    for key in sorted(thresholds):
        for entry in thresholds[key] or ():
            text = entry.get("threshold") if isinstance(entry, dict) else entry
            found = _EXPRESSION.fullmatch(str(text))
            if not found:
                raise RunError(f"threshold {key}: {text!r} is not 'aggregate op number'")
            agg, op, bound = found.groups()
            try:
                limit = float(bound)
            except ValueError as exc:
                raise RunError(f"threshold {key}: {text!r}: {bound!r} is not a number") from exc
            value = merged.aggregate(key, agg)
            ok = {
                "<": value < limit, "<=": value <= limit, ">": value > limit,
                ">=": value >= limit, "==": value == limit, "!=": value != limit,
            }[op]  # fmt: skip
            outcomes.append(ThresholdOutcome(key, str(text), ok=ok))
    return tuple(outcomes)


def summary(merged: Merged, thresholds: Mapping[str, Any]) -> tuple[K6Summary, RawSamples]:
    """The merged run as one k6 summary and its raw samples (for ``collect.scenario_from_k6``)."""
    failed = merged.sorted_values("http_req_failed")
    k6_summary = K6Summary(
        requests=round(merged.aggregate("http_reqs", "count")),
        duration_s=merged.window_s,
        failed_rate=float(np.count_nonzero(failed)) / len(failed) if len(failed) else 0.0,
        dropped_iterations=round(merged.aggregate("dropped_iterations", "count")),
        latency_ms=merged.trend("http_req_duration"),
        ttfe_ms=merged.trend("search_sse_ttfe"),
        thresholds=judge_thresholds(merged, thresholds),
    )
    raw = RawSamples(tuple(merged.durations), tuple(merged.failed), tuple(merged.ttfe))
    return k6_summary, raw


# -- invariants ---------------------------------------------------------------------------------


def planned_iterations(options: Mapping[str, Any]) -> dict[str, float] | None:
    """Iterations each arrival-rate scenario plans (rate x duration; stages integrated), or
    None when the script has a scenario of another executor."""
    scenarios = options.get("scenarios") or {}
    planned: dict[str, float] = {}
    for name, sc in scenarios.items():
        unit = parse_go_duration(str(sc.get("timeUnit") or "1s"))
        if sc.get("executor") == "constant-arrival-rate":
            planned[name] = float(sc["rate"]) * parse_go_duration(str(sc["duration"])) / unit
        elif sc.get("executor") == "ramping-arrival-rate":
            rate, total = float(sc.get("startRate") or 0), 0.0
            for stage in sc.get("stages") or ():
                seconds, target = parse_go_duration(str(stage["duration"])), float(stage["target"])
                total += (rate + target) / 2 * seconds
                rate = target
            planned[name] = total / unit
        else:
            return None
    return planned


def check_invariants(
    merged: Merged,
    options: Mapping[str, Any],
    *,
    start_skew_s: float | None = None,
    max_skew_s: float = 1.0,
) -> None:
    """Raise RunError naming the runner when a distributed run cannot be right.

    - every runner recorded samples and HTTP requests;
    - the requests counted (``http_reqs``) equal the latency samples merged;
    - per arrival-rate scenario, iterations plus dropped iterations are the planned
      rate x duration within the number of runners (each may start one at its boundary);
    - the runners were resumed within ``max_skew_s`` of each other.
    """
    n = len(merged.runners)
    for r in merged.runners:
        if r.samples == 0 or r.requests == 0:
            raise RunError(f"runner {r.runner} ({r.path.name}) is empty: it sent no request")
        if r.requests != r.durations:
            raise RunError(
                f"runner {r.runner}: {r.requests} http_reqs but {r.durations} latency samples"
            )
    total = sum(r.requests for r in merged.runners)
    if total != len(merged.values["http_req_duration"]):
        raise RunError(
            f"the runners counted {total} requests, the merge holds "
            f"{len(merged.values['http_req_duration'])} latency samples"
        )
    planned = planned_iterations(options)
    for name, iterations in (planned or {}).items():
        done = merged.aggregate(f"iterations{{scenario:{name}}}", "count")
        dropped = merged.aggregate(f"dropped_iterations{{scenario:{name}}}", "count")
        if abs(done + dropped - iterations) > n:
            per = ", ".join(
                f"runner {r.runner}: {r.iterations}+{r.dropped}" for r in merged.runners
            )
            raise RunError(
                f"scenario {name}: {done:.0f} iterations + {dropped:.0f} dropped, planned "
                f"{iterations:.0f} (rate x duration) +-{n}; per runner (all scenarios) {per}"
            )
    if start_skew_s is not None and start_skew_s > max_skew_s:
        raise RunError(
            f"the runners started {start_skew_s:.3f} s apart (bound {max_skew_s:.3f} s): "
            "the last one resumed was late"
        )
