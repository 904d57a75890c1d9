"""The duet file (``windows.json``): both revisions measured side by side, window by window.

``perfci gate`` drives the base and the candidate service at once, under one open-model
load, in short windows (``scenarios/duet.js``). Each window holds one figure set per side;
the judge (:mod:`ci.judge.duet`) works from this file alone, so a gate run can be judged
again, on another machine, to the same verdict.

=======  ===================================================================
version  what changed
=======  ===================================================================
1        the first format
2        the whole side: PostgreSQL and Valkey CPU, service RSS, searches slower
         than the warm-up limit, streams, the burst, each side's data layer
3        a slow search is one answered ``tail_margin_ms`` later than the other
         side answered the same query sent at the same moment
4        the commands each side's own Valkey server processed (``valkey_calls``)
=======  ===================================================================

Per side and window: the requests the load generator sent (searches, streams, burst
searches and writes), the latency of the successful searches (exact percentiles: k6 keeps
every sample), the failed requests, the CPU seconds of everything that serves the side
(its service processes, its PostgreSQL backends, its own Valkey server; apart from them,
its relay to PostgreSQL when ``[gate] db_rtt_ms`` emulates a network), the service's
resident memory at the window's start and end and its peak, the searches answered
``tail_margin_ms`` or more later than the other side answered the same query sent at the
same moment (version 2: slower than a limit fixed from the warm-up), the latency of
streams and burst searches, and the commands its own Valkey server processed.
Per side and run: how its data layer was built (``setup``) and what the run's seed dealt it
(``placement``: its slot name, ports, start position, hash seed and CPUs).
Version 1 files (service CPU, latency and errors only) are read as they are: what they lack
is absent, and the judge reports the metrics that need it as not measured.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import msgspec

from ci.errors import ResultsError
from ci.results.codec import read_json_file

DUET_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
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


class Timing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A latency of one side over one window (streams, burst searches), ms."""

    samples: int
    p50: float
    p90: float
    p95: float
    maximum: float


class SideWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requests: int  # every request sent to this side (searches, streams, ingests, deletes)
    searches: int
    failed: int  # requests without the expected 2xx (or without any response)
    cpu_s: float  # CPU time (user + system) of the side's service processes
    latency_ms: WindowLatency
    postgres_cpu_s: float | None = None  # CPU of the backends connected to the side's database
    valkey_cpu_s: float | None = None  # CPU of the side's own Valkey server
    # CPU of the side's relay to PostgreSQL ([gate] db_rtt_ms): the emulated network, so
    # not the side's and not in total_cpu_s
    relay_cpu_s: float | None = None
    rss_start_mb: float | None = None  # service RSS (all its processes) as the window starts
    rss_end_mb: float | None = None  # ... as it ends
    rss_peak_mb: float | None = None  # the highest sample in between (sampled every ~0.5 s)
    # with sequential bursts: the RSS as the arrivals end, before the bursts (new searches
    # that fill the caches); RSS growth is then read over the arrivals alone
    rss_arrivals_end_mb: float | None = None
    slow: int | None = None  # successful searches slow by the run's tail rule (see above)
    ttfe_ms: Timing | None = None  # streams (k >= 200): time to the first event
    stream_ms: Timing | None = None  # streams: time to the last event
    burst_ms: Timing | None = None  # searches of the concurrent burst
    # version 4: commands the side's own Valkey server processed in the window (its
    # INFO ``total_commands_processed``, less the runner's reading)
    valkey_calls: int | None = None

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
        for key in (
            "cpu_s",
            "postgres_cpu_s",
            "valkey_cpu_s",
            "relay_cpu_s",
            "rss_start_mb",
            "rss_end_mb",
        ):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} = {value!r}: must be finite and >= 0")
        if self.slow is not None and not 0 <= self.slow <= self.latency_ms.samples:
            raise ValueError(f"slow = {self.slow}: must lie in [0, {self.latency_ms.samples}]")
        if self.valkey_calls is not None and self.valkey_calls < 0:
            raise ValueError(f"valkey_calls = {self.valkey_calls}: must be >= 0")

    @property
    def total_cpu_s(self) -> float:
        """Everything that serves the side: service + its PostgreSQL backends + its Valkey
        (not its relay to PostgreSQL: that is the network between them)."""
        return self.cpu_s + (self.postgres_cpu_s or 0.0) + (self.valkey_cpu_s or 0.0)

    def per_request_ms(self, cpu_s: float | None) -> float | None:
        if cpu_s is None or not self.requests or cpu_s <= 0:
            return None
        return 1000.0 * cpu_s / self.requests

    @property
    def valkey_calls_per_request(self) -> float | None:
        """Commands of the side's own Valkey server per request (None: not counted)."""
        if self.valkey_calls is None or not self.requests:
            return None
        return self.valkey_calls / self.requests

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        """The whole side's CPU per request (the service's alone in a version 1 file)."""
        return self.per_request_ms(self.total_cpu_s)

    @property
    def rss_kb_per_1k_requests(self) -> float | None:
        """Service RSS growth over the window, KB per 1,000 requests (negative: it shrank);
        with ``rss_arrivals_end_mb``, over the arrivals alone, per 1,000 of their requests
        (every request but the burst's searches)."""
        if self.rss_start_mb is None:
            return None
        if self.rss_arrivals_end_mb is not None:
            arrivals = self.requests - (self.burst_ms.samples if self.burst_ms else 0)
            if arrivals <= 0:
                return None
            return (self.rss_arrivals_end_mb - self.rss_start_mb) * 1024.0 / arrivals * 1000.0
        if self.rss_end_mb is None or not self.requests:
            return None
        return (self.rss_end_mb - self.rss_start_mb) * 1024.0 / self.requests * 1000.0

    @property
    def slow_share(self) -> float | None:
        """Share of the successful searches that were slow (``tail_margin_ms`` behind)."""
        if self.slow is None or not self.latency_ms.samples:
            return None
        return self.slow / self.latency_ms.samples


class DuetWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: int  # 0-based, warm-up windows included
    block: int  # the ABBA block it belongs to (0-based)
    warmup: bool  # discarded by the judge
    slot_a: Side  # which side k6's slot "a" drove (the other drove slot "b")
    started_at: str  # ISO 8601, UTC
    duration_s: float  # wall time of the window, load generator start to end
    base: SideWindow
    candidate: SideWindow
    tail_limit_ms: float | None = None  # version 2: searches above it were "slow"
    # both services were (re)started just before it: their first window, in which a
    # process's RSS still settles (its RSS growth is left out of the judged pairs)
    restarted: bool = False

    def side(self, name: Side) -> SideWindow:
        return self.base if name == "base" else self.candidate


class SideSetup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one side's data layer was built by its own loader, and how long it took."""

    index: str  # the index the side's loader built (its name says its kind and parameters)
    embed_s: float  # embedding the corpus (from the embedding cache when warm)
    copy_s: float  # COPY of the corpus
    index_s: float  # the index build
    ready_s: float  # empty database to a ready service (loader + service start)


class SidePlacement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the run's seed dealt one side besides its code (``ci.experiments.gate.symmetry``)."""

    slot: str  # its neutral name: its worktree, run folder and database are named by it
    port: int  # its service's port
    valkey_port: int  # its own Valkey server's port
    start: int  # its place in the order the loaders ran and the services started (0: first)
    hash_seed: str  # PYTHONHASHSEED of its loader, service and exact-scan service
    cpus: tuple[int, ...] | None = None  # the CPUs its service and Valkey ran on (None: any)


class DuetDesign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the windows were measured (all of it from ``perf.toml [gate]``)."""

    rate: float  # iterations per second; each sends one search to each side
    window_s: float
    warmup_windows: int
    unique_fraction: float  # share of queries made unique (no cache has them)
    write_fraction: float  # share of iterations that also ingest and delete a document
    order_seed: int  # seed of the shuffled ABBA blocks
    workers: int  # service worker processes per side
    stream_fraction: float = 0.0  # share of iterations that also open a stream on each side
    stream_k: int = 0  # results a stream asks for
    burst_vus: int = 0  # requests held in flight per side during the burst
    burst_iterations: int = 0  # searches each burst VU sends
    restart_every: int = 0  # services restarted after the warm-up and every this many blocks
    burst_gap_s: float = 0.0  # > 0: the sides burst one after the other, this far apart (s)
    db_rtt_ms: float = 0.0  # > 0: each side reached PostgreSQL through a relay of this round trip
    tail_margin_ms: float = 0.0  # > 0 (version 3): a search this much slower than the other
    # side's answer to the same query was "slow"


def restarted_before(index: int, warmup_windows: int, restart_every: int) -> bool:
    """Whether both services restart before window ``index``: at the start of the first
    measured block, after the warm-up, and of every ``restart_every``-th one after it
    (0: never). Such a window is the new processes' first (``DuetWindow.restarted``)."""
    measured = index - warmup_windows
    every = 4 * restart_every
    return restart_every > 0 and index > 0 and measured >= 0 and measured % every == 0


class DuetRevision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ref: str
    commit: str


class DuetRun(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: int = DUET_VERSION
    base: DuetRevision
    candidate: DuetRevision
    design: DuetDesign
    windows: tuple[DuetWindow, ...]
    setup: dict[str, SideSetup] | None = None  # per side ("base", "candidate")
    placement: dict[str, SidePlacement] | None = None  # per side: what the seed dealt it

    def __post_init__(self) -> None:
        if self.version not in READABLE_VERSIONS:
            raise ValueError(
                f"version {self.version}: this perfci reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
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
