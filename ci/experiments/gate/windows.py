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
round trips     the commands the side's own Valkey server processed, by its own count
                (:mod:`~ci.experiments.gate.valkey_calls`)
memory          the RSS of the service's processes (summed) at the start and the end,
                and the highest of the samples taken every ``RSS_SAMPLE_S`` in between;
                with sequential bursts also the first sample after ``window_s`` (the
                arrivals' end): their new searches fill the caches, so growth is read
                before them
tail            k6 counts per slot the searches answered ``[gate] tail_margin_ms`` or
                more after the other slot answered the same query, sent at the same
                moment: a load on the whole machine delays both answers, a stall in
                one side's code only its own (a limit fixed from the warm-up ranged
                from 52 to 278 ms over 13 runs on one VM in a day, and the A/A share
                above it from under 1 % to 9 %)
==============  ========================================================================

Beside the open arrivals, a share of iterations opens one search stream (large k) on
each side; when the arrivals end, a burst of VUs holds many searches in flight per side
(``scenarios/duet.js``): after them, so the burst's queueing never reaches the searches the
tail share counts. With ``[gate] burst_gap_s`` the sides burst one after the other, slot
``a`` first (so the ABBA order alternates which revision goes first), that far apart.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ci.errors import RunError
from ci.experiments.gate.k6_window import (
    K6_EXIT_THRESHOLDS,
    K6_GRACE_S,
    SETTLE_S,
    DuetLoad,
    read_metrics,
    run_k6,
    slot_figures,
    window_env,
)
from ci.experiments.gate.sampling import (
    RssSampler,
    backend_cpu,
    backend_cpu_delta,
    cpu_of,
    process_cpu_s,
    process_rss_mb,
)
from ci.experiments.gate.valkey_calls import CommandCounter, calls_between
from ci.measure.k6 import find_k6
from ci.results.duet import (
    SIDES,
    DuetDesign,
    DuetWindow,
    Side,
    SideWindow,
)
from ci.settings.gate import GateDesign


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
    valkey_url: str | None = None  # the side's own Valkey server (its commands are counted)


@dataclass(frozen=True, slots=True)
class SideReading:
    """One reading of a side's CPU seconds so far (backends by PID; None: not attributed)
    and of its Valkey server's command count."""

    service_s: float
    backends: Mapping[int, float] | None
    valkey_s: float | None
    relay_s: float | None = None
    valkey_commands: int | None = None


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
        self._commands = CommandCounter()
        out_dir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Closes the connections that count the Valkey servers' commands."""
        self._commands.close()

    def retarget(self, targets: Mapping[Side, DuetTarget]) -> None:
        """The sides' services from now on (their processes were restarted)."""
        assert set(targets) == set(SIDES), f"targets for {sorted(targets)}, expected both sides"
        self._targets = dict(targets)

    def settle(self, restart: int) -> None:
        """Both services under the windows' load for ``SETTLE_S``, measured by nobody: a
        restarted process warms its caches, its pool's new backends and its rarer paths
        (streams, writes, batches of many queries) there, not in the next window: in five
        runs the first window after a restart read a median p90 of 0.96-1.8x the others'
        (median 1.5x; docs/gate-calibration.md). Both sides' searches go at once, as in a
        window, and the burst too (``burst_gap_s`` 0: the windows' own sequence of burst
        searches is left to them)."""
        load = replace(self._load, window_s=SETTLE_S, burst_gap_s=0.0)
        urls = (self._targets["base"].url, self._targets["candidate"].url)
        env = window_env(load, urls, f"{self._nonce}s{restart}")
        summary = self._out / f"settle-{restart:02d}.summary.json"
        log = self._out / f"settle-{restart:02d}.k6.log"
        code = run_k6(self._k6, env, summary, log, SETTLE_S + K6_GRACE_S)
        if code not in (0, K6_EXIT_THRESHOLDS):
            tail = log.read_text(errors="replace")[-1500:]
            raise RunError(f"k6 settling run {restart} exited {code}; its output ends:\n{tail}")

    def _read(self) -> dict[Side, SideReading]:
        """Each side's CPU so far; its backends are those connected to its database on its
        database's server (one query per server: both sides' when they share one). And its
        Valkey server's command count."""
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
        out: dict[Side, SideReading] = {}
        for side, t in self._targets.items():
            key = (t.postgres_url or self._pg or "", t.database or "")
            valkey = cpu_of(t.valkey_pid) if t.valkey_pid is not None else None
            relay = cpu_of(t.relay_pid) if t.relay_pid is not None else None
            commands = None if t.valkey_url is None else self._commands.read(t.valkey_url)
            out[side] = SideReading(
                process_cpu_s(t.pid), backends.get(key), valkey, relay, commands
            )
        return out

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow:
        slot_b: Side = "candidate" if slot_a == "base" else "base"
        slots = {"a": slot_a, "b": slot_b}
        load = self._load
        urls = (self._targets[slot_a].url, self._targets[slot_b].url)
        burst_seq = index * load.burst_vus * load.burst_iterations
        env = window_env(load, urls, f"{self._nonce}w{index}", burst_seq)
        summary_path = self._out / f"window-{index:03d}.summary.json"
        log_path = self._out / f"window-{index:03d}.k6.log"
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        before = self._read()
        pids = {s: t.pid for s, t in self._targets.items()}
        rss_start = {s: process_rss_mb(pid) for s, pid in pids.items()}
        t0 = time.monotonic()
        # with sequential bursts (of new searches, each filling the caches) RSS growth is
        # read over the arrivals alone: up to the first sample after window_s
        mark = load.window_s if load.burst_gap_s > 0 else None
        with RssSampler(pids, mark_after_s=mark) as sampler:
            limit = load.window_s + 2 * load.burst_gap_s + K6_GRACE_S  # bursts after arrivals
            code = run_k6(self._k6, env, summary_path, log_path, limit)
        duration = time.monotonic() - t0
        rss_end = {s: process_rss_mb(pid) for s, pid in pids.items()}
        after = self._read()
        if code not in (0, K6_EXIT_THRESHOLDS):
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RunError(f"k6 duet window {index} exited {code}; its output ends:\n{tail}")
        metrics = read_metrics(summary_path)
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
                valkey_calls=calls_between(b.valkey_commands, a.valkey_commands),
            )
        return DuetWindow(
            index=index,
            block=block,
            warmup=warmup,
            slot_a=slot_a,
            started_at=started_at,
            duration_s=round(duration, 3),
            base=sides["base"],
            candidate=sides["candidate"],
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
        tail_margin_ms=gate.tail_margin_ms,
    )


def _rounded(mb: float | None) -> float | None:
    return None if mb is None else round(mb, 3)
