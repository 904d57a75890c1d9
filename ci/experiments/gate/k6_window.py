"""One duet window's k6 run: what ``scenarios/duet.js`` is given and what it gives back.

The load every window sends (:class:`DuetLoad`, from ``perf.toml [gate]``) becomes the
script's environment (:func:`window_env`, read by ``scenarios/lib/config.js``); its summary
export becomes each slot's figures (:func:`slot_figures`). Which side a slot serves is the
runner's business (``windows.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import RunError
from ci.measure.k6 import SCENARIOS_DIR
from ci.results.duet import SideWindow, Timing, WindowLatency
from ci.settings.gate import GateDesign

DUET_SCRIPT = SCENARIOS_DIR / "duet.js"
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99),count"
K6_EXIT_THRESHOLDS = 99  # a threshold failed: still a measurement (the SLA is judged apart)
SETTLE_S = 2.0  # after each restart, an unmeasured run of the windows' load this long
K6_GRACE_S = 60.0  # beyond the window itself, before a hung k6 is killed


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
    tail_margin_ms: float = 25.0  # a search this much behind the other side's answer is slow


def window_env(
    load: DuetLoad, urls: tuple[str, str], nonce: str, burst_seq: int = 0
) -> dict[str, str]:
    """What ``scenarios/duet.js`` reads (``lib/config.js``): ``urls`` of slot a and b, and
    the run's number of this window's first burst search (``lib/duet.js``)."""
    return {
        **load.sla_env,
        "TAIL_MARGIN_MS": repr(load.tail_margin_ms),
        "STREAM_FRACTION": repr(load.stream_fraction),
        "STREAM_K": str(load.stream_k),
        "BURST_VUS": str(load.burst_vus),
        "BURST_ITERATIONS": str(load.burst_iterations),
        "BURST_AT_S": repr(load.window_s),  # when the arrivals end
        "BURST_GAP_S": repr(load.burst_gap_s),  # slot a bursts first, slot b this much later
        "BURST_SEQ": str(burst_seq),
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


def run_k6(binary: Path, env: Mapping[str, str], summary: Path, log: Path, timeout: float) -> int:
    """Run the duet script once; k6's exit code (its output goes to ``log``)."""
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


def read_metrics(path: Path) -> dict[str, Any]:
    """The ``metrics`` object of a k6 summary export."""
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
            slow=int(values("slow")["count"]) if "count" in values("slow") else None,
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
        tail_margin_ms=gate.tail_margin_ms,
    )
