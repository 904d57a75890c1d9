"""ci.render.diff: the exact Markdown of a plain difference, with no verdict in it."""

from __future__ import annotations

from pathlib import Path

from ci.judge.diff import MetricDiff, RunDiff
from ci.render.diff import NO_VERDICT, render_diff
from ci.results import load_results

RES = Path(__file__).resolve().parents[2] / "resources" / "results"


def _diff(rows: tuple[MetricDiff, ...], unmatched: tuple[str, ...] = ()) -> RunDiff:
    base, cand = load_results(RES / "base-1.json"), load_results(RES / "cand-1.json")
    return RunDiff(base.run, cand.run, rows, unmatched)


def test_exact_markdown() -> None:
    rows = (
        MetricDiff("search", "latency_p95", 100.0, 110.0),
        MetricDiff("search", "throughput_rps", 50.0, 40.0),
        MetricDiff("search", "error_rate", 0.0, 0.0012),
        MetricDiff("search", "cache_hit_ratio", None, 0.8),
        MetricDiff("search", "peak_rss_mb", 0.0, 12.0),
    )
    assert render_diff(_diff(rows, ("spike",))) == (
        "## Against the baseline (profile pr)\n"
        "\n"
        "Baseline base\\-1 (commit 111111111111, 2026\\-11\\-27); "
        "this run cand\\-1 (commit 222222222222, 2026\\-11\\-27).\n"
        "\n"
        f"{NO_VERDICT}\n"
        "\n"
        "| scenario | metric | baseline | this run | change |\n"
        "|---|---|---:|---:|---:|\n"
        "| search | latency p95 | 100.0 ms | 110.0 ms | +10.0 % |\n"
        "| search | throughput | 50.0 rps | 40.0 rps | -20.0 % |\n"
        "| search | error rate | 0.000 % | 0.120 % | +0.120 pp |\n"
        "| search | cache hit ratio | n/a | 80.00 % | n/a |\n"
        "| search | peak RSS | 0.0 MB | 12.0 MB | n/a |\n"
        "\n"
        "Scenarios only one of the runs has (not compared): spike.\n"
    )
    assert "cannot decide" in NO_VERDICT
    for word in ("PASS", "FAIL", "regress", "improved"):
        assert word not in render_diff(_diff(rows))


def test_untrusted_names_cannot_break_the_table() -> None:
    text = render_diff(_diff((MetricDiff("a|b <img src=x>", "latency_p50", 1.0, 1.0),)))
    assert text.splitlines()[-1] == (
        "| a\\|b &lt;img src=x&gt; | latency p50 | 1.0 ms | 1.0 ms | +0.0 % |"
    )
