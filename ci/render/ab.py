"""The text table of ``perfci calibrate`` (A/A and slowed statuses per metric, alarm counts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def calibration_table(report: Mapping[str, Any]) -> str:
    """``report`` is ``ci.experiments.calibrate.calibration_report``'s (calibration.json)."""
    slowdown = report["slowdown_ms"]
    width = max((len(k) for k in report["metrics"]), default=10)
    lines = [f"{'metric':{width}}  A/A statuses          slowed statuses"]
    for key, sides in report["metrics"].items():
        lines.append(f"{key:{width}}  {','.join(sides['aa']):20}  {','.join(sides['slowed'])}")
    p50 = report["base_p50_ms"]
    share = ", ".join(f"{100 * slowdown / v:.0f}%" if v > 0 else "n/a" for v in p50)
    lines.append(
        f"delay {slowdown} ms = {share} of the base p50 ({', '.join(f'{v:.1f}' for v in p50)} ms)"
    )
    n = report["rounds"]
    lines += [
        f"false alarms (A/A verdict fail): {report['false_alarms']}/{n}",
        f"detections (slowed verdict fail): {report['detections']}/{n}",
        f"A/A metric comparisons: {report['aa_metric_fails']} fail, "
        f"{report['aa_metric_warns']} warn of {report['aa_metric_comparisons']}",
        f"slowed p50 comparisons: {report['slowed_p50_fails']} fail, "
        f"{report['slowed_p50_warns']} warn of {report['slowed_p50_comparisons']}",
    ]
    return "\n".join(lines)
