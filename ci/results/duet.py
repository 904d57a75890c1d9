"""The duet file (``windows.json``): both revisions measured side by side, window by window.

``perfci gate`` drives the base and the candidate service at once, under one open-model
load, in short windows (``scenarios/duet.js``). Each window holds one figure set per side;
the judge (:mod:`ci.judge.duet`) works from this file alone, so a gate run can be judged
again, on another machine, to the same verdict.

=======  ===================================================================
version  what changed
=======  ===================================================================
1        the first format
=======  ===================================================================

Per side and window: the requests the load generator sent (searches and writes), the
latency of the successful searches (exact percentiles: k6 keeps every sample), the failed
requests, and the CPU seconds the side's service processes used over the window.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import msgspec

from ci.errors import ResultsError
from ci.results.codec import read_json_file

DUET_VERSION = 1
Side = Literal["base", "candidate"]
SIDES: tuple[Side, Side] = ("base", "candidate")


class WindowLatency(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Search latency of one side over one window, ms; ``samples`` successful searches."""

    samples: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    maximum: float

    def __post_init__(self) -> None:
        values = (self.p50, self.p90, self.p95, self.p99, self.mean, self.maximum)
        if self.samples < 0 or not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"latency figures must be finite and >= 0: {values}")
        if not self.p50 <= self.p90 <= self.p95 <= self.p99 <= self.maximum:
            raise ValueError(
                f"percentiles out of order: p50 {self.p50} p90 {self.p90} p95 {self.p95} "
                f"p99 {self.p99} max {self.maximum}"
            )


class SideWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requests: int  # every request sent to this side (searches, ingests, deletes)
    searches: int
    failed: int  # requests without the expected 2xx (or without any response)
    cpu_s: float  # CPU time (user + system) of the side's service processes
    latency_ms: WindowLatency

    def __post_init__(self) -> None:
        if not 0 <= self.failed <= self.requests or not 0 <= self.searches <= self.requests:
            raise ValueError(
                f"counts out of range: requests {self.requests}, searches {self.searches}, "
                f"failed {self.failed}"
            )
        if self.latency_ms.samples > self.searches:
            raise ValueError(
                f"{self.latency_ms.samples} latency samples but {self.searches} searches"
            )
        if not (math.isfinite(self.cpu_s) and self.cpu_s >= 0):
            raise ValueError(f"cpu_s = {self.cpu_s!r}: must be finite and >= 0")

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        return 1000.0 * self.cpu_s / self.requests if self.requests and self.cpu_s > 0 else None


class DuetWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: int  # 0-based, warm-up windows included
    block: int  # the ABBA block it belongs to (0-based)
    warmup: bool  # discarded by the judge
    slot_a: Side  # which side k6's slot "a" drove (the other drove slot "b")
    started_at: str  # ISO 8601, UTC
    duration_s: float  # wall time of the window, load generator start to end
    base: SideWindow
    candidate: SideWindow

    def side(self, name: Side) -> SideWindow:
        return self.base if name == "base" else self.candidate


class DuetDesign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the windows were measured (all of it from ``perf.toml [gate]``)."""

    rate: float  # iterations per second; each sends one search to each side
    window_s: float
    warmup_windows: int
    unique_fraction: float  # share of queries made unique (no cache has them)
    write_fraction: float  # share of iterations that also ingest and delete a document
    order_seed: int  # seed of the shuffled ABBA blocks
    workers: int  # service worker processes per side


class DuetRevision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ref: str
    commit: str


class DuetRun(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: int = DUET_VERSION
    base: DuetRevision
    candidate: DuetRevision
    design: DuetDesign
    windows: tuple[DuetWindow, ...]

    def __post_init__(self) -> None:
        if self.version != DUET_VERSION:
            raise ValueError(f"version {self.version}: this perfci reads version {DUET_VERSION}")
        for i, w in enumerate(self.windows):
            if w.index != i:
                raise ValueError(f"windows[{i}].index = {w.index}: windows must be in order")

    @property
    def measured(self) -> tuple[DuetWindow, ...]:
        """The windows the judge uses: every window after the warm-up."""
        return tuple(w for w in self.windows if not w.warmup)


def load_duet(path: str | os.PathLike[str]) -> DuetRun:
    """Read and validate a duet file; every problem is a :class:`ResultsError` naming it."""
    source = os.fspath(path)
    data = read_json_file(source)
    try:
        return msgspec.convert(data, DuetRun, strict=True)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ResultsError(f"{source}: not a valid duet file: {exc}") from exc


def dump_duet(run: DuetRun, path: str | os.PathLike[str]) -> None:
    """Write the duet file atomically (it grows window by window during a gate run)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(run), indent=2) + b"\n")
    os.replace(tmp, target)
