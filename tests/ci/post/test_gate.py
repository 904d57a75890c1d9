"""What a finished perf-pr run means for the check and the comment (ci.post.gate)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ci.judge.gate_decision import judge
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateDecision, dump_verdict, load_verdict
from ci.post.gate import gate_outcome
from ci.render.gate import MARKER
from ci.results.duet import DuetRun, DuetWindow, SideWindow, Timing, dump_duet, load_duet
from ci.settings.gate import GateRule
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.post.gate_artifacts import LINKS, RULE, artifact, as_measured, event


@pytest.mark.parametrize(
    ("decision", "conclusion", "title"),
    [
        ("pass", "success", "PASS: "),
        ("fail", "failure", "FAIL: cpu_ms_per_request +2"),
        ("inconclusive", "neutral", "INCONCLUSIVE: "),
    ],
)
def test_a_verdict_sets_the_conclusion(
    tmp_path: Path, decision: GateDecision, conclusion: str, title: str
) -> None:
    out = gate_outcome(event(), artifact(tmp_path, decision), LINKS, RULE)
    assert out.conclusion == conclusion
    assert out.check.title.startswith(title)
    assert out.pr == 17
    assert out.comment is not None
    assert out.comment.startswith(MARKER + "\n**Performance gate: ")
    assert out.verdict is not None
    assert out.problem is None


def test_a_pass_of_a_harness_change_is_neutral(tmp_path: Path) -> None:
    out = gate_outcome(event(), artifact(tmp_path, "pass", changed=("ci/x.py",)), LINKS, RULE)
    assert out.conclusion == "neutral"
    assert "changes the harness" in out.check.title


@pytest.mark.parametrize(
    ("conclusion", "title"),
    [
        ("failure", "FAIL: The perf-pr run failed before it reached a verdict"),
        ("cancelled", "FAIL: The perf-pr run was cancelled"),
        ("timed_out", "FAIL: The perf-pr run timed out"),
    ],
)
def test_a_run_without_verdict_fails_and_says_why(
    tmp_path: Path, conclusion: str, title: str
) -> None:
    # the crashed job still uploaded pr.json (upload runs unless cancelled): the PR is known
    out = gate_outcome(event(conclusion), artifact(tmp_path, None), LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.check.title == title
    assert "never passes" in out.check.summary
    assert "[workflow run](https://github.com/acme/search/actions/runs/100/attempts/1)" in (
        out.check.summary
    )
    assert out.pr == 17
    assert out.comment is not None


def test_a_cancelled_fork_run_without_artifact_fails_without_comment() -> None:
    out = gate_outcome(event("cancelled"), None, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.pr is None
    assert out.comment is None


def test_a_same_repository_pr_is_known_from_the_event() -> None:
    out = gate_outcome(event("timed_out", prs=(17,)), None, LINKS, RULE)
    assert out.pr == 17
    assert out.comment is not None


@pytest.mark.parametrize(
    ("record", "verdict_file", "problem"),
    [
        ({}, None, "pr.json is missing"),
        ({"run_attempt": 2}, "pass", "a stale artifact"),
        ({"head_sha": "d" * 40}, "pass", "names head dddddddddddd"),
        ({}, "missing", "verdict.json is missing"),
        ({}, "garbage", "not a valid gate verdict"),
        ({"merge_sha": "e" * 40}, "pass", "not the merge commit eeeeeeeeeeee"),
    ],
)
def test_a_bad_artifact_fails_the_check(
    tmp_path: Path, record: dict[str, Any], verdict_file: str | None, problem: str
) -> None:
    if verdict_file is not None:
        artifact(tmp_path, "pass" if verdict_file == "pass" else None, **record)
        if verdict_file == "garbage":
            (tmp_path / "verdict.json").write_text('{"kind": "perfci-gate-verdict"}')
    out = gate_outcome(event(), GateFolder(tmp_path), LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.check.title.startswith("FAIL: no valid")
    assert out.problem is not None
    assert problem in out.problem
    assert out.verdict is None


def test_a_pr_that_cannot_merge_is_neutral(tmp_path: Path) -> None:
    folder = artifact(
        tmp_path, None, outcome="cannot-merge", merge_sha=None, base_sha=None, reason="conflict"
    )
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "neutral"
    assert out.check.title == "NEUTRAL: the pull request cannot be merged"
    assert out.comment is not None
    assert "conflict" in out.comment


def test_a_superseded_run_is_neutral_and_silent(tmp_path: Path) -> None:
    folder = artifact(tmp_path, None, outcome="superseded", reason="head moved")
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "neutral"
    assert out.comment is None


def test_the_windows_are_judged_again_and_a_forged_verdict_fails(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "pass")
    assert gate_outcome(event(), folder, LINKS, RULE).conclusion == "success"
    # the same PASS verdict over windows that show a +25 % CPU regression
    dump_duet(as_measured(drawn_run(36, cpu_effect=0.25, seed=0)), folder.windows)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.problem is not None
    assert "windows.json judges to 'fail' over 36 windows" in out.problem
    assert "the verdict says 'pass' over 36" in out.problem
    folder.windows.unlink()
    missing = gate_outcome(event(), folder, LINKS, RULE)
    assert missing.conclusion == "failure"
    assert missing.problem is not None
    assert "windows.json is missing" in missing.problem


def test_a_verdict_judged_by_another_rule_fails(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "fail")
    # the artifact's own rule, made lax enough to pass its windows, and judged consistently
    lax = GateRule(
        metrics=tuple(msgspec.structs.replace(m, fail_threshold=0.5) for m in RULE.metrics)
    )
    v = load_verdict(folder.verdict)
    dump_verdict(msgspec.structs.replace(v, rule=lax), folder.verdict)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.problem is not None
    assert "another rule than this repository's perf.toml [gate]" in out.problem


def _doctor(run: DuetRun, i: int, **changes: Any) -> DuetRun:
    windows = list(run.windows)
    windows[i] = msgspec.structs.replace(windows[i], **changes)
    return msgspec.structs.replace(run, windows=tuple(windows))


def _searches(w: SideWindow, n: int) -> SideWindow:
    return msgspec.structs.replace(w, searches=n, requests=n + 44)


_DOCTORED: dict[str, tuple[Callable[[DuetRun], DuetRun], str]] = {
    "counts beyond rate x duration": (
        lambda r: _doctor(
            r, 9, base=_searches(r.windows[9].base, 2200),
            candidate=_searches(r.windows[9].candidate, 2200),
        ),
        "window 9: 2200 searches to the base, more than 110/s x 10 s allow",
    ),
    "sides with other counts": (
        lambda r: _doctor(r, 9, candidate=_searches(r.windows[9].candidate, 1105)),
        "window 9: 1100 searches to the base but 1105 to the candidate",
    ),
    "non-monotone windows": (
        lambda r: _doctor(r, 11, started_at=r.windows[9].started_at),
        "window 11 started before window 10 ended",
    ),
    "a window shorter than its design": (
        lambda r: _doctor(r, 20, duration_s=4.0),
        "window 20 lasted 4.0 s, not a 10.0 s window",
    ),
    "a measured window marked as warm-up": (
        lambda r: _doctor(r, 6, warmup=True),
        "window 6: warm-up flag or ABBA block out of sequence",
    ),
    "one side always in slot a": (
        lambda r: _doctor(_doctor(r, 6, slot_a="base"), 7, slot_a="base"),
        "block 1 drives slot a as base, base, base, base",
    ),
    "requests that no write, stream or burst explains": (
        lambda r: _doctor(
            r, 9, base=msgspec.structs.replace(r.windows[9].base, requests=1100 + 500),
        ),
        "window 9: 500 requests to the base besides its searches, more than its writes",
    ),
    "a burst larger than its VUs send": (
        lambda r: _doctor(
            r, 9, candidate=msgspec.structs.replace(
                r.windows[9].candidate, burst_ms=Timing(400, 60.0, 84.0, 96.0, 120.0)
            ),
        ),
        "window 9: 400 burst searches and 36 streams to the candidate, more than 50 x 3",
    ),
    "a window marked restarted that no restart came before": (
        lambda r: _doctor(r, 9, restarted=True),
        "window 9 is marked restarted, but with restart_every = 0 no restart comes before it",
    ),
    "another design": (
        lambda r: msgspec.structs.replace(
            r, design=msgspec.structs.replace(r.design, rate=220.0)
        ),
        "measured under another design than the verdict's",
    ),
}  # fmt: skip


@pytest.mark.parametrize("doctoring", list(_DOCTORED))
def test_doctored_windows_are_refused(tmp_path: Path, doctoring: str) -> None:
    folder = artifact(tmp_path, "pass")
    doctor, problem = _DOCTORED[doctoring]
    dump_duet(doctor(load_duet(folder.windows)), folder.windows)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.check.title == "FAIL: no valid verdict"
    assert out.problem is not None
    assert problem in out.problem


def test_a_candidate_that_broke_fails_with_its_cause(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "pass")
    v = load_verdict(folder.verdict)
    empty = msgspec.structs.replace(load_duet(folder.windows), windows=())
    dump_duet(empty, folder.windows)
    cause = "its service started but is not ready: Service Unavailable"
    j = judge(empty, v.rule, harness=v.harness, stopped="candidate failed", failure=cause)
    broke = msgspec.structs.replace(v, judgement=j, stopped="candidate failed", failure=cause)
    dump_verdict(broke, folder.verdict)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.problem is None  # a verdict, not a broken run
    assert out.comment is not None
    assert "Service Unavailable" in out.comment
    # the same windows with the failure taken out judge to another verdict: refused
    dump_verdict(msgspec.structs.replace(broke, failure=None), folder.verdict)
    forged = gate_outcome(event(), folder, LINKS, RULE)
    assert forged.conclusion == "failure"
    assert forged.problem is not None
    assert "windows.json judges to 'inconclusive' over 0 windows" in forged.problem


def _summary(w: DuetWindow) -> dict[str, Any]:
    """The k6 summary export of one duet window, as scenarios/duet.js writes it."""
    slots = {"a": w.slot_a, "b": "candidate" if w.slot_a == "base" else "base"}
    metrics: dict[str, Any] = {}
    for slot, side in slots.items():
        figures = w.side(side)  # type: ignore[arg-type]
        lat = figures.latency_ms
        metrics[f"search_duet_{slot}_searches"] = {"count": figures.searches}
        metrics[f"search_duet_{slot}_latency"] = {
            "count": lat.samples, "med": lat.p50, "p(90)": lat.p90, "p(95)": lat.p95,
        }  # fmt: skip
    return {"metrics": metrics}


def test_windows_must_agree_with_their_k6_summaries(tmp_path: Path) -> None:
    folder = artifact(tmp_path, "pass")
    run = load_duet(folder.windows)
    folder.window_logs.mkdir()
    for w in run.windows:
        path = folder.window_logs / f"window-{w.index:03d}.summary.json"
        path.write_text(json.dumps(_summary(w)))
    assert gate_outcome(event(), folder, LINKS, RULE).conclusion == "success"
    # windows.json made 10 % faster on the candidate than its summaries say
    faster = msgspec.structs.replace(
        run.windows[7].candidate,
        latency_ms=msgspec.structs.replace(
            run.windows[7].candidate.latency_ms, p50=run.windows[7].candidate.latency_ms.p50 * 0.9
        ),
    )
    dump_duet(_doctor(run, 7, candidate=faster), folder.windows)
    out = gate_outcome(event(), folder, LINKS, RULE)
    assert out.conclusion == "failure"
    assert out.problem is not None
    assert "window 7 gives the candidate p50 = " in out.problem
    assert "its k6 summary" in out.problem
