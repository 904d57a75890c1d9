"""The calibration table: per kind of verdict, how often the gate said what."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def calibration_table(summary: Mapping[str, Any], slowdown: float) -> str:
    """Markdown: A/A false alarms and slowed detections, with their 95 % intervals."""
    lines = [
        "| verdicts | pass | fail | inconclusive | FAIL rate (95 % CI) | median CPU change | "
        "median windows |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    names = {"aa": "A/A (identical)", "slowed": f"slowed (+{slowdown * 100:g} % CPU per search)"}
    for kind in ("aa", "slowed"):
        s = summary.get(kind) or {}
        if not s.get("verdicts"):
            continue
        lo, hi = s["fail_rate_ci95"]
        cpu = s.get("median_cpu_change")
        lines.append(
            f"| {names[kind]}: {s['verdicts']} | {s['pass']} | {s['fail']} | {s['inconclusive']} | "
            f"{s['fail']}/{s['verdicts']} = {_pct(s['fail_rate'])} [{_pct(lo)}, {_pct(hi)}] | "
            f"{'-' if cpu is None else f'{cpu * 100:+.1f} %'} | {s['median_pairs']} |"
        )
    return "\n".join(lines) + "\n"
