"""Plain-text tables for the terminal: the pytest-benchmark comparison."""

from __future__ import annotations

from ci.judge.bench import BenchmarkComparison


def benchmark_table(result: BenchmarkComparison) -> str:
    """One line per benchmark: change, interval and status."""
    lines = [f"{'benchmark':60} {'change':>9} {'interval':>21} status"]
    for m in result.metrics:
        est = "n/a" if m.change is None else f"{m.change * 100:+.1f}%"
        ci = (
            ""
            if m.ci_low is None or m.ci_high is None
            else f"[{m.ci_low * 100:+.1f}%, {m.ci_high * 100:+.1f}%]"
        )
        lines.append(f"{m.scenario + ' ' + m.metric:60.60} {est:>9} {ci:>21} {m.status}")
    return "\n".join(lines)
