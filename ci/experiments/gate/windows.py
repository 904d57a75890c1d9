"""Duet windows: both services under one open-model load, one short window at a time.

Each window is one ``k6 run scenarios/duet.js``: every iteration sends the same query to
k6's slot ``a`` and slot ``b`` at once (``http.batch``), so both revisions see the same
arrivals, the same query sequence (Zipf log plus a unique share) and the same writes, on
the same machine at the same moment. Which side a slot drives is swapped in shuffled ABBA
blocks (:func:`abba_slots`), so any advantage of a slot cancels out; the first block is a
warm-up and the judge drops it.

Per side the runner records what k6 measured for its slot (exact percentiles: k6 keeps
every sample) and the CPU time (user + system) of the side's service processes from
just before k6 starts to just after it ends, read with psutil.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ci.errors import RunError
from ci.measure.k6 import SCENARIOS_DIR, find_k6
from ci.results.duet import SIDES, DuetDesign, DuetWindow, Side, SideWindow, WindowLatency
from ci.settings.gate import GateDesign

DUET_SCRIPT = SCENARIOS_DIR / "duet.js"
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99),count"
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


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (those alive now)."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error as exc:
        raise RunError(f"service process {pid} is gone: {exc}") from exc
    total = 0.0
    for proc in family:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # a helper that exited between listing and reading
        total += t.user + t.system
    return total


@dataclass(frozen=True, slots=True)
class DuetTarget:
    """One side's running service."""

    side: Side
    url: str
    pid: int


@dataclass(frozen=True, slots=True)
class DuetLoad:
    """What every window sends (``perf.toml [gate]``)."""

    rate: float
    window_s: float
    unique_fraction: float
    write_fraction: float
    query_log: Path
    sla_env: Mapping[str, str]  # PERFCI_SLA_* (lib/config.js insists on them)


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
    ) -> None:
        assert set(targets) == set(SIDES), f"targets for {sorted(targets)}, expected both sides"
        self._targets = dict(targets)
        self._load = load
        self._out = out_dir
        self._nonce = nonce
        self._k6 = k6 or find_k6()
        out_dir.mkdir(parents=True, exist_ok=True)

    def window(self, index: int, block: int, warmup: bool, slot_a: Side) -> DuetWindow:
        slot_b: Side = "candidate" if slot_a == "base" else "base"
        slots = {"a": slot_a, "b": slot_b}
        load = self._load
        env = {
            **load.sla_env,
            "RATE": repr(load.rate),
            "DUET_S": repr(load.window_s),
            "UNIQUE_FRACTION": repr(load.unique_fraction),
            "WRITE_FRACTION": repr(load.write_fraction),
            "QUERY_LOG": str(load.query_log.resolve()),
            "DUET_URL_A": self._targets[slot_a].url,
            "DUET_URL_B": self._targets[slot_b].url,
            "DUET_NONCE": f"{self._nonce}w{index}",
            "K6_NO_USAGE_REPORT": "true",
        }
        summary_path = self._out / f"window-{index:03d}.summary.json"
        log_path = self._out / f"window-{index:03d}.k6.log"
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        before = {s: process_cpu_s(t.pid) for s, t in self._targets.items()}
        t0 = time.monotonic()
        code = _run_k6(self._k6, env, summary_path, log_path, load.window_s + K6_GRACE_S)
        duration = time.monotonic() - t0
        after = {s: process_cpu_s(t.pid) for s, t in self._targets.items()}
        if code not in (0, K6_EXIT_THRESHOLDS):
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RunError(f"k6 duet window {index} exited {code}; its output ends:\n{tail}")
        metrics = _read_metrics(summary_path)
        sides: dict[Side, SideWindow] = {}
        for slot, side in slots.items():
            sides[side] = slot_figures(metrics, slot, max(0.0, after[side] - before[side]))
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


def slot_figures(metrics: Mapping[str, Any], slot: str, cpu_s: float) -> SideWindow:
    """One slot's figures from a duet summary export (a metric k6 never saw is absent)."""

    def values(name: str) -> Mapping[str, Any]:
        found = metrics.get(f"search_duet_{slot}_{name}")
        return found if isinstance(found, dict) else {}

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
    )
