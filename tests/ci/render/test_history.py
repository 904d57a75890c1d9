"""ci.render.history: the job summary of the history's run, exactly."""

from __future__ import annotations

from dataclasses import dataclass

from ci.history.detect import ChangePoint, Detection, MetricAnalysis, TrackedMetric
from ci.history.store import Series, SeriesKey
from ci.history.tracking import Tracked, tracking_id
from ci.render.history import job_summary

KEY = SeriesKey("pr", "gha-ubuntu-24.04", "arrival_rate")
REPO = "https://github.com/acme/search"
A, B, C = "a" * 40, "b" * 40, "c" * 40


@dataclass(frozen=True)
class Outcome:
    tracking: str
    action: str
    number: int
    url: str


def _cp(metric: str, commit: str, before: float, after: float, kind: str) -> ChangePoint:
    return ChangePoint(
        key=KEY,
        metric=metric,
        index=3,
        commit=commit,
        previous_commit=A,
        mean_before=before,
        mean_after=after,
        change_percent=(after / before - 1) * 100,
        pvalue=1e-6,
        kind=kind,  # type: ignore[arg-type]  # a Kind literal
    )


def _analysis(metric: str, *cps: ChangePoint) -> MetricAnalysis:
    spec = TrackedMetric(metric, "lower")
    return MetricAnalysis(Series(KEY, (metric,)), spec, 0.05, (), cps, ())


def test_change_points_issues_and_links() -> None:
    p50 = _analysis("latency_p50", _cp("latency_p50", B, 10.0, 12.0, "regression"))
    cpu = _analysis("cpu_ms_per_request", _cp("cpu_ms_per_request", C, 4.0, 3.0, "improvement"))
    detection = Detection((p50, cpu))
    tid = tracking_id(KEY, "latency_p50")
    tracked = [Tracked(tid, p50, "open", p50.change_points, None)]
    touched = [Outcome(tid, "created", 12, f"{REPO}/issues/12")]
    text = job_summary(
        detection,
        tracked,
        touched,
        repo_url=REPO,
        dashboard_url="https://acme.github.io/search/",
        run_url=f"{REPO}/actions/runs/7",
    )
    assert text == (
        "## Performance history of main\n"
        "\n"
        "2 change point(s) in 2 metric series; 1 open regression(s).\n"
        "\n"
        "| series | metric | commit | before | after | change | p | kind |\n"
        "|---|---|---|---:|---:|---:|---:|---|\n"
        f"| `pr.gha-ubuntu-24.04.arrival_rate` | latency p50 | [bbbbbbbbbb]({REPO}/commit/{B})"
        " | 10 | 12 | +20.0 % | 1e-06 | regression |\n"
        f"| `pr.gha-ubuntu-24.04.arrival_rate` | service CPU per request | "
        f"[cccccccccc]({REPO}/commit/{C}) | 4 | 3 | -25.0 % | 1e-06 | improvement |\n"
        "\n"
        "### Regression issues\n"
        "\n"
        "| issue | what | action |\n"
        "|---|---|---|\n"
        f"| [\\#12]({REPO}/issues/12) | Performance regression\\: latency p50 of arrival\\_rate "
        "\\(pr, gha\\-ubuntu\\-24\\.04\\), \\+20\\.0 % at bbbbbbbbbb | created |\n"
        "\n"
        "See [the dashboard](https://acme.github.io/search/) and "
        f"[this workflow run]({REPO}/actions/runs/7).\n"
    )


def test_a_quiet_history_says_so_without_links() -> None:
    detection = Detection((_analysis("latency_p50"),))
    assert job_summary(detection, [], []) == (
        "## Performance history of main\n"
        "\n"
        "0 change point(s) in 1 metric series; 0 open regression(s).\n"
        "\n"
        "### Regression issues\n"
        "\n"
        "No regression issue is open, and none was opened or closed.\n"
    )
