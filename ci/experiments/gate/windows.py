"""Duet windows: both services under one open-model load, one short window at a time.

Each window is one ``k6 run scenarios/duet.js``: every iteration sends the same query to
k6's slot ``a`` and slot ``b`` at once (``http.batch``), so both revisions see the same
arrivals, the same query sequence (Zipf log plus a unique share) and the same writes, on
the same machine at the same moment. Which side a slot drives is swapped in shuffled ABBA
blocks (:func:`abba_slots`), so any advantage of a slot cancels out; the first block is a
warm-up and the judge drops it.

Per side the runner records what k6 measured for its slot (exact percentiles: k6 keeps
every sample) and, from just before k6 starts to just after it ends, read with psutil:

==============  ========================================================================
CPU             user + system of the side's service processes, of the PostgreSQL
                backends connected to the side's own database (``pg_stat_activity`` of
                its server: a pool's backends persist, so their CPU is read before and
                after; one born during the window counts from its birth) and of the
                side's own Valkey server; apart from them (report-only, not the side's:
                it is the emulated network of ``[gate] db_rtt_ms``), its relay to
                PostgreSQL
memory          the RSS of the service's processes (summed) at the start and the end,
                and the highest of the samples taken every ``RSS_SAMPLE_S`` in between;
                with sequential bursts also the first sample after ``window_s`` (the
                arrivals' end): their new searches fill the caches, so growth is read
                before them
tail            k6 counts per slot the searches slower than the tail limit: the low
                median of the base's p98 over the warm-up windows, fixed once they are
                done (a cold or disturbed warm-up window only raises its p98; the low
                median ignores up to half of them, the lowest value would be noisy)
==============  ========================================================================

Beside the open arrivals, a share of iterations opens one search stream (large k) on
each side; when the arrivals end, a burst of VUs holds many searches in flight per side
(``scenarios/duet.js``): after them, so the burst's queueing never reaches the searches the
tail share counts. With ``[gate] burst_gap_s`` the sides burst one after the other, slot
``a`` first (so the ABBA order alternates which revision goes first), that far apart.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from ci.errors import RunError
from ci.experiments.gate.sampling import (
    RssSampler,
    backend_cpu,
    backend_cpu_delta,
    cpu_of,
    process_cpu_s,
    process_rss_mb,
)
from ci.measure.k6 import SCENARIOS_DIR, find_k6
from ci.results.duet import (
    SIDES,
    DuetDesign,
    DuetWindow,
    Side,
    SideWindow,
    Timing,
    WindowLatency,
)
from ci.settings.gate import GateDesign

DUET_SCRIPT = SCENARIOS_DIR / "duet.js"
TREND_STATS = "avg,min,med,max,p(90),p(95),p(98),p(99),count"
K6_EXIT_THRESHOLDS = 99  # a threshold failed: still a measurement (the SLA is judged apart)
K6_GRACE_S = 60.0  # beyond the window itself, before a hung k6 is killed


def abba_slots(blocks: int, rng: random.Random) -> list[Side]:
    """The side slot ``a`` drives in each window: blocks of ABBA or BAAB, each drawn at random."""
    out: list[Side] = []
    for _ in range(blocks):
        first: Side = "base" if rng.random() < 0.5 else "candidate"
        other: Side = "candidate" if first == "base" else "base"
        out += [first, other, other, first]
    return out


@dataclass(frozen=True, slots=True)
class DuetTarget:
    """One side's running service, its own database and its own Valkey server."""

    side: Side
    url: str
    pid: int
    database: str | None = None  # the side's PostgreSQL database (its backends' CPU)
    valkey_pid: int | None = None  # the side's own Valkey server
    postgres_url: str | None = None  # an admin URL of its database's server (None: the runner's)
    relay_pid: int | None = None  # the side's own relay to PostgreSQL (db_rtt_ms > 0)


@dataclass(frozen=True, slots=True)
class SideCpu:
    """One reading of a side's CPU seconds so far (backends by PID; None: not attributed)."""

    service_s: float
    backends: Mapping[int, float] | None
    valkey_s: float | None
    relay_s: float | None = None


@dataclass(frozen=True, slots=True)
class DuetLoad:
    """What every window sends (``perf.toml [gate]``)."""

    rate: float
    window_s: float
    unique_fraction: float
    write_fraction: float
    query_log: Path
    sla_env: Mapping[str, str]  # PERFCI_SLA_* (lib/config.js insists on them)
    stream_fraction: float = 0.0
    stream_k: int = 200
    burst_vus: int = 0
    burst_iterations: int = 4
    burst_gap_s: float = 0.0  # > 0: the sides burst one after the other, this far apart


class DuetRunner:
    """Runs windows against two running services; raw k6 files land in ``out_dir``."""

    def __init__(
        self,
        targets: Mapping[Side, DuetTarget],
        load: DuetLoad,
        out_dir: Path,
        *,
        nonce: str,
        k6: Path | None = None,
        postgres_url: str | None = None,
    ) -> None:
        assert set(targets) == set(SIDES), f"targets for {sorted(targets)}, expected both sides"
        self._targets = dict(targets)
        self._load = load
        self._out = out_dir
        self._nonce = nonce
        self._k6 = k6 or find_k6()
        self._pg = postgres_url  # an admin URL of the server of targets that name none
        self._warm_p98: list[float] = []
        self.tail_limit_ms: float | None = None
        out_dir.mkdir(parents=True, exist_ok=True)

    def retarget(self, targets: Mapping[Side, DuetTarget]) -> None:
        """The sides' services from now on (their processes were restarted)."""
        assert set(targets) == set(SIDES), f"targets for {sorted(targets)}, expected both sides"
        self._targets = dict(targets)

    def _cpu(self) -> dict[Side, SideCpu]:
        """Each side's CPU so far; its backends are those connected to its database on its
        database's server (one query per server: both sides' when they share one)."""
        servers: dict[str, list[str]] = {}
        for t in self._targets.values():
            url = t.postgres_url or self._pg
            if url and t.database:
                servers.setdefault(url, []).append(t.database)
        backends = {
            (url, db): cpu
            for url, dbs in servers.items()
            for db, cpu in backend_cpu(url, dbs).items()
        }
        out: dict[Side, SideCpu] = {}
        for side, t in self._targets.items():
            key = (t.postgres_url or self._pg or "", t.database or "")
            valkey = cpu_of(t.valkey_pid) if t.valkey_pid is not None else None
            relay = cpu_of(t.relay_pid) if t.relay_pid is not None else None
            out[side] = SideCpu(process_cpu_s(t.pid), backends.get(key), valkey, relay)
        return out

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow:
        slot_b: Side = "candidate" if slot_a == "base" else "base"
        slots = {"a": slot_a, "b": slot_b}
        load = self._load
        if not warmup and self.tail_limit_ms is None and self._warm_p98:
            self.tail_limit_ms = round(statistics.median_low(self._warm_p98), 3)
        tail_limit = None if warmup else self.tail_limit_ms
        urls = (self._targets[slot_a].url, self._targets[slot_b].url)
        env = window_env(load, urls, f"{self._nonce}w{index}", tail_limit)
        summary_path = self._out / f"window-{index:03d}.summary.json"
        log_path = self._out / f"window-{index:03d}.k6.log"
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        before = self._cpu()
        pids = {s: t.pid for s, t in self._targets.items()}
        rss_start = {s: process_rss_mb(pid) for s, pid in pids.items()}
        t0 = time.monotonic()
        # with sequential bursts (of new searches, each filling the caches) RSS growth is
        # read over the arrivals alone: up to the first sample after window_s
        mark = load.window_s if load.burst_gap_s > 0 else None
        with RssSampler(pids, mark_after_s=mark) as sampler:
            limit = load.window_s + 2 * load.burst_gap_s + K6_GRACE_S  # bursts after arrivals
            code = _run_k6(self._k6, env, summary_path, log_path, limit)
        duration = time.monotonic() - t0
        rss_end = {s: process_rss_mb(pid) for s, pid in pids.items()}
        after = self._cpu()
        if code not in (0, K6_EXIT_THRESHOLDS):
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RunError(f"k6 duet window {index} exited {code}; its output ends:\n{tail}")
        metrics = _read_metrics(summary_path)
        sides: dict[Side, SideWindow] = {}
        for slot, side in slots.items():
            b, a = before[side], after[side]
            pg = None
            if a.backends is not None:
                pg = backend_cpu_delta(b.backends or {}, a.backends)
            valkey = None
            if a.valkey_s is not None and b.valkey_s is not None:
                valkey = max(0.0, a.valkey_s - b.valkey_s)
            relay = None
            if a.relay_s is not None and b.relay_s is not None:
                relay = max(0.0, a.relay_s - b.relay_s)
            figures = slot_figures(
                metrics,
                slot,
                max(0.0, a.service_s - b.service_s),
                counts_slow=tail_limit is not None,
            )
            sides[side] = msgspec.structs.replace(
                figures,
                postgres_cpu_s=None if pg is None else round(pg, 6),
                valkey_cpu_s=None if valkey is None else round(valkey, 6),
                relay_cpu_s=None if relay is None else round(relay, 6),
                rss_start_mb=round(rss_start[side], 3),
                rss_end_mb=round(rss_end[side], 3),
                rss_peak_mb=round(max(sampler.peak[side], rss_end[side]), 3),
                rss_arrivals_end_mb=_rounded(sampler.marked.get(side)),
            )
        base_slot = "a" if slot_a == "base" else "b"
        p98 = metrics.get(f"search_duet_{base_slot}_latency", {}).get("p(98)")
        if warmup and sides["base"].latency_ms.samples and isinstance(p98, (int, float)):
            self._warm_p98.append(float(p98))
        return DuetWindow(
            index=index,
            block=block,
            warmup=warmup,
            slot_a=slot_a,
            started_at=started_at,
            duration_s=round(duration, 3),
            base=sides["base"],
            candidate=sides["candidate"],
            tail_limit_ms=tail_limit,
        )


def window_env(
    load: DuetLoad, urls: tuple[str, str], nonce: str, tail_limit: float | None
) -> dict[str, str]:
    """What ``scenarios/duet.js`` reads (``lib/config.js``): ``urls`` of slot a and b."""
    return {
        **load.sla_env,
        "TAIL_LIMIT_MS": repr(tail_limit or 0.0),
        "STREAM_FRACTION": repr(load.stream_fraction),
        "STREAM_K": str(load.stream_k),
        "BURST_VUS": str(load.burst_vus),
        "BURST_ITERATIONS": str(load.burst_iterations),
        "BURST_AT_S": repr(load.window_s),  # when the arrivals end
        "BURST_GAP_S": repr(load.burst_gap_s),  # slot a bursts first, slot b this much later
        "RATE": repr(load.rate),
        "DUET_S": repr(load.window_s),
        "UNIQUE_FRACTION": repr(load.unique_fraction),
        "WRITE_FRACTION": repr(load.write_fraction),
        "QUERY_LOG": str(load.query_log.resolve()),
        "DUET_URL_A": urls[0],
        "DUET_URL_B": urls[1],
        "DUET_NONCE": nonce,
        "K6_NO_USAGE_REPORT": "true",
    }


def _run_k6(binary: Path, env: Mapping[str, str], summary: Path, log: Path, timeout: float) -> int:
    import os

    cmd = [
        str(binary),
        *["run", "--quiet", "--no-color", "--summary-trend-stats", TREND_STATS],
        *["--summary-export", str(summary), str(DUET_SCRIPT)],
    ]
    with open(log, "w") as fh:
        try:
            proc = subprocess.Popen(
                cmd, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise RunError(f"cannot start k6 ({binary}): {exc.strerror or exc}") from exc
        try:
            return proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read k6's summary: {exc}") from exc
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise RunError(f"{path}: not a k6 summary export (no 'metrics' object)")
    return metrics


def slot_figures(
    metrics: Mapping[str, Any], slot: str, cpu_s: float, *, counts_slow: bool = False
) -> SideWindow:
    """One slot's figures from a duet summary export (a metric k6 never saw is absent);
    ``counts_slow``: the window ran with a tail limit, so its slow count is a figure."""

    def values(name: str) -> Mapping[str, Any]:
        found = metrics.get(f"search_duet_{slot}_{name}")
        return found if isinstance(found, dict) else {}

    def timing(name: str) -> Timing | None:
        found = values(name)
        samples = int(found.get("count", 0))
        if not samples:
            return None
        return Timing(
            samples=samples,
            p50=float(found.get("med", 0.0)),
            p90=float(found.get("p(90)", 0.0)),
            p95=float(found.get("p(95)", 0.0)),
            maximum=float(found.get("max", 0.0)),
        )

    try:
        lat = values("latency")
        samples = int(lat.get("count", 0))
        latency = WindowLatency(
            samples=samples,
            p50=float(lat.get("med", 0.0)),
            p90=float(lat.get("p(90)", 0.0)),
            p95=float(lat.get("p(95)", 0.0)),
            p99=float(lat.get("p(99)", 0.0)),
            mean=float(lat.get("avg", 0.0)),
            maximum=float(lat.get("max", 0.0)),
        )
        failed = values("failed")
        return SideWindow(
            requests=int(values("requests").get("count", 0)),
            searches=int(values("searches").get("count", 0)),
            # a k6 Rate counts its true values as "passes": true = the request failed
            failed=int(failed.get("passes", 0)),
            cpu_s=round(cpu_s, 6),
            latency_ms=latency,
            slow=int(values("slow").get("count", 0)) if counts_slow else None,
            ttfe_ms=timing("ttfe"),
            stream_ms=timing("stream"),
            burst_ms=timing("burst"),
        )
    except (TypeError, ValueError) as exc:
        raise RunError(f"duet summary, slot {slot}: malformed figures: {exc}") from exc


def duet_load(gate: GateDesign, query_log: Path, sla_env: Mapping[str, str]) -> DuetLoad:
    """What every window sends, as perf.toml [gate] sets it, over this stack's query log."""
    return DuetLoad(
        rate=gate.rate,
        window_s=gate.window_s,
        unique_fraction=gate.unique_fraction,
        write_fraction=gate.write_fraction,
        query_log=query_log,
        sla_env=sla_env,
        stream_fraction=gate.stream_fraction,
        stream_k=gate.stream_k,
        burst_vus=gate.burst_vus,
        burst_iterations=gate.burst_iterations,
        burst_gap_s=gate.burst_gap_s,
    )


def duet_design(gate: GateDesign, order_seed: int) -> DuetDesign:
    """The duet's design as perf.toml [gate] sets it, with this run's window-order seed."""
    return DuetDesign(
        rate=gate.rate,
        window_s=gate.window_s,
        warmup_windows=gate.warmup_windows,
        unique_fraction=gate.unique_fraction,
        write_fraction=gate.write_fraction,
        order_seed=order_seed,
        workers=gate.workers,
        stream_fraction=gate.stream_fraction,
        stream_k=gate.stream_k,
        burst_vus=gate.burst_vus,
        burst_iterations=gate.burst_iterations,
        restart_every=gate.restart_every,
        burst_gap_s=gate.burst_gap_s,
        db_rtt_ms=gate.db_rtt_ms,
    )


def _rounded(mb: float | None) -> float | None:
    return None if mb is None else round(mb, 3)
