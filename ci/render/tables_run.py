"""The end-of-run table of ``perfci run`` (plain text, printed by the CLI)."""

from __future__ import annotations

from collections.abc import Mapping

from ci.results import RunResults


def summary_table(results: RunResults, peak_connections: Mapping[str, int]) -> str:
    """A plain-text table of every scenario (printed by the CLI)."""
    head = (
        f"{'scenario':14} {'tool':25} {'requests':>9} {'req/s':>8} {'err %':>6} "
        f"{'p50':>8} {'p95':>8} {'p99':>8} {'p99.9':>8} {'ttfe95':>8} {'conns':>6} {'hit %':>6}"
    )
    lines = [head, "-" * len(head)]
    for s in results.scenarios:
        lat = s.latency_ms
        ttfe = f"{s.ttfe_ms.p95:8.1f}" if s.ttfe_ms else f"{'-':>8}"
        peak = peak_connections.get(s.name)
        hit = s.cache.hit_ratio if s.cache else None
        lines.append(
            f"{s.name:14} {s.tool:25} {s.requests:9d} {s.throughput_rps:8.1f} "
            f"{s.error_rate * 100:6.2f} {lat.p50:8.1f} {lat.p95:8.1f} {lat.p99:8.1f} "
            f"{lat.p999:8.1f} {ttfe} {peak if peak is not None else '-':>6} "
            f"{f'{hit * 100:.1f}' if hit is not None else '-':>6}"
        )
    lines.append("latencies in ms; conns = peak ESTABLISHED connections on the service port")
    return "\n".join(lines)
