"""`perfci history` end to end: add, detect, dashboard and issues on synthetic histories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.history.detect import primary_metrics
from ci.settings import load_perf_config
from tests.ci.conftest import ResultsDictFactory
from tests.ci.history.synthetic import SCENARIO, sha, write_history
from tests.ci.post.fake_github import NAME, OWNER, TOKEN, FakeGitHub, serve

# The synthetic step scales every latency figure; the other primary metrics stay flat.
PRIMARY_LATENCY = {
    m.name for m in primary_metrics(load_perf_config()) if m.name.startswith("latency_")
}


@pytest.fixture(autouse=True)
def _no_machine_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFCI_MACHINE_CLASS", raising=False)


def _add_all(store: Path, files: list[tuple[Path, str]]) -> None:
    for path, commit in files:
        assert main(["history", "add", str(path), "--commit", commit, "--store", str(store)]) == 0


def _detect(store: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]]]:
    capsys.readouterr()
    code = main(["history", "detect", "--store", str(store), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_12_percent_step_at_commit_25_is_found_there(
    tmp_path: Path, results_dict: ResultsDictFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_history(tmp_path / "runs", results_dict, steps=[(25, 1.12)], noise=0.03)
    store = tmp_path / "store"
    _add_all(store, files)
    code, points = _detect(store, capsys)
    assert code == 1  # a regression is open
    assert {p["metric"] for p in points} == PRIMARY_LATENCY  # nothing else moved
    near = {sha(i) for i in (24, 25, 26)}
    for p in points:
        assert p["kind"] == "regression"
        assert p["commit"] in near, p
        assert p["scenario"] == SCENARIO
        assert 8.0 < float(p["change_percent"]) < 16.0  # type: ignore[arg-type]
        assert float(p["pvalue"]) < 1e-4  # type: ignore[arg-type]
        assert p["mean_after"] > p["mean_before"]  # type: ignore[operator]
    # the text form names the commit, the metric, both means, the change and p
    assert main(["history", "detect", "--store", str(store)]) == 1
    out = capsys.readouterr().out
    for metric in PRIMARY_LATENCY:
        assert f"{metric}  at {sha(25)[:12]}" in out
    assert "REGRESSION" in out
    assert f"{len(PRIMARY_LATENCY)} open regression(s)" in out


def test_a_flat_history_has_no_change_point(
    tmp_path: Path, results_dict: ResultsDictFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    _add_all(store, write_history(tmp_path / "runs", results_dict, noise=0.03))
    assert _detect(store, capsys) == (0, [])


def test_adding_a_commit_twice_keeps_one_row(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    files = write_history(tmp_path / "runs", results_dict, n=3)
    store = tmp_path / "store"
    _add_all(store, files + files[1:2])
    csv = next(store.glob("*/*/*.csv")).read_text().splitlines()
    assert len(csv) == 1 + 3


def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, results_dict: ResultsDictFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "detect", "--store", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    ((path, commit),) = write_history(tmp_path / "runs", results_dict, n=1, profile="smoke")
    assert main(["history", "add", str(path), "--commit", commit, "--store", str(tmp_path)]) == 2
    assert "a run of profile 'smoke'" in capsys.readouterr().err
    bad = tmp_path / "s" / "pr" / "m" / f"{SCENARIO}.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("time,commit\n")
    assert main(["history", "detect", "--store", str(tmp_path / "s")]) == 2
    assert "header starts" in capsys.readouterr().err
    assert (
        main(["history", "add", str(path), "--commit", "not-a-sha", "--store", str(tmp_path)]) == 2
    )


def test_dashboard_writes_one_chart_per_primary_metric(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    store = tmp_path / "store"
    _add_all(store, write_history(tmp_path / "runs", results_dict, steps=[(25, 1.12)]))
    out = tmp_path / "site"
    code = main(["history", "dashboard", "--store", str(store), "--out", str(out),
                 "--repo-url", "https://github.com/acme/search"])  # fmt: skip
    assert code == 0
    html = (out / "index.html").read_text()
    # the primary metrics the arrival_rate series holds (ttfe comes with the fixture too)
    assert html.count('<svg class="chart"') >= len(PRIMARY_LATENCY)
    assert html.count('data-points="40"') == html.count('<svg class="chart"')


def _issues(fake: FakeGitHub, store: Path, *more: str) -> int:
    return main([
        "history", "issues", "--store", str(store), "--repo", f"{OWNER}/{NAME}",
        "--api-url", fake.base, "--run-url", "https://github.example/acme/search/actions/runs/1",
        *more,
    ])  # fmt: skip


def test_a_step_that_reverts_later_closes_its_issue(
    tmp_path: Path,
    results_dict: ResultsDictFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    files = write_history(tmp_path / "runs", results_dict, n=50, noise=0.02,
                          steps=[(15, 1.15), (31, 1 / 1.15)])  # fmt: skip
    store = tmp_path / "store"
    _add_all(store, files[:30])
    with serve() as fake:
        assert _issues(fake, store) == 0
        opened = [i for i in fake.issues if i["state"] == "open"]
        assert len(opened) == len(PRIMARY_LATENCY)  # one per regressed metric
        assert all(sha(15)[:10] in i["title"] for i in opened)
        assert all(i["labels"][0]["name"] == "perf-regression" for i in opened)
        # a second run with nothing new edits nothing and opens nothing
        before = len(fake.paths("POST"))
        assert _issues(fake, store) == 0
        assert len(fake.paths("POST")) == before
        assert not [p for p in fake.paths("PATCH") if "/issues/" in p]
        # the level comes back at commit 31: every issue is closed, saying by which commit
        _add_all(store, files[30:])
        assert _issues(fake, store) == 0
        assert [i["state"] for i in fake.issues] == ["closed"] * len(PRIMARY_LATENCY)
        for issue in fake.issues:
            (comment,) = fake.issue_comments[issue["number"]]
            assert "Reverted" in comment["body"]
            assert sha(31)[:10] in comment["body"]
    assert "perfci: issue #" in capsys.readouterr().err


def test_issues_job_summary_names_change_points_issues_and_the_dashboard(
    tmp_path: Path,
    results_dict: ResultsDictFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    summary = tmp_path / "step-summary.md"
    summary.write_text("an earlier step's summary\n")
    files = write_history(tmp_path / "runs", results_dict, n=50, noise=0.02,
                          steps=[(15, 1.15), (31, 1 / 1.15)])  # fmt: skip
    store = tmp_path / "store"
    _add_all(store, files[:30])
    args = ["--job-summary", "--dashboard-url", "https://acme.github.io/search/"]
    with serve() as fake:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        assert _issues(fake, store, *args) == 0  # outside Actions: nothing written, a note
        assert "GITHUB_STEP_SUMMARY is not set" in capsys.readouterr().err
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        _add_all(store, files[30:])
        assert _issues(fake, store, *args) == 0  # the level came back: the issues close
    text = summary.read_text()
    assert text.startswith("an earlier step's summary\n## Performance history of main\n")
    assert f"[{sha(15)[:10]}](https://github.com/{OWNER}/{NAME}/commit/{sha(15)})" in text
    assert f"regression (reverted by [{sha(31)[:10]}]" in text
    numbers = sorted(i["number"] for i in fake.issues)
    assert len(numbers) == len(PRIMARY_LATENCY)
    for n in numbers:
        assert f"/issues/{n}) | Performance regression" in text
    assert text.count("| closed |") == len(PRIMARY_LATENCY)
    assert "See [the dashboard](https://acme.github.io/search/) and [this workflow run](" in text


def test_record_appends_to_the_data_branch_with_its_dashboard(
    tmp_path: Path, results_dict: ResultsDictFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    files = write_history(tmp_path / "runs", results_dict, n=4)
    for i, (path, commit) in enumerate(files, start=1):
        code = main([
            "history", "record", str(path), "--commit", commit, "--remote", str(remote),
            "--checkout", str(tmp_path / f"work-{i % 2}"), "--branch", "perf-data",
        ])  # fmt: skip
        assert code == 0
    names = subprocess.run(
        ["git", "-C", str(remote), "ls-tree", "-r", "--name-only", "perf-data"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    csv = f"pr/2cpu-24gb-x86_64/{SCENARIO}.csv"
    assert sorted(names) == sorted(["docs/index.html", "otava.yaml", csv])
    shown = subprocess.run(
        ["git", "-C", str(remote), "show", f"perf-data:{csv}"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert [line.split(",")[1] for line in shown[1:]] == [c for _, c in files]
    log = subprocess.run(
        ["git", "-C", str(remote), "rev-list", "--count", "perf-data"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert log == "4"  # one commit per run, none forced away
    # recording the same run again changes nothing
    path, commit = files[-1]
    assert main(["history", "record", str(path), "--commit", commit, "--remote", str(remote),
                 "--checkout", str(tmp_path / "work-0")]) == 0  # fmt: skip
    assert "nothing pushed" in capsys.readouterr().err
