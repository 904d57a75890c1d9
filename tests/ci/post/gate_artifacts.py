"""A perf-pr artifact and its workflow_run event, as the perf-comment job receives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci.judge.gate_verdict import GateDecision, dump_verdict
from ci.post.event import Action, WorkflowRunEvent
from ci.render.gate import GateLinks
from ci.results.duet import dump_duet
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.render.gate_verdicts import BASE_SHA, MERGE_SHA, verdict

HEAD = "a" * 40
LINKS = GateLinks("https://github.com/acme/search/actions/runs/100/attempts/1")


def event(
    conclusion: str | None = "success",
    prs: tuple[int, ...] = (),
    action: Action = "completed",
    attempt: int = 1,
) -> WorkflowRunEvent:
    return WorkflowRunEvent(
        action=action,
        repo="acme/search",
        workflow="perf-pr",
        run_id=100,
        run_attempt=attempt,
        run_url="https://github.com/acme/search/actions/runs/100",
        head_sha=HEAD,
        event="pull_request",
        conclusion=conclusion if action == "completed" else None,
        pull_requests=prs,
    )


def artifact(tmp_path: Path, decision: GateDecision | None = "pass", **record: Any) -> Path:
    pr = {
        "version": 1,
        "pr": 17,
        "head_sha": HEAD,
        "merge_sha": MERGE_SHA,
        "base_sha": BASE_SHA,
        "run_id": 100,
        "run_attempt": record.pop("run_attempt", 1),
        "outcome": "tested",
        **record,
    }
    (tmp_path / "pr.json").write_text(json.dumps({k: v for k, v in pr.items() if v is not None}))
    if decision is not None:
        # windows that judge to the decision under the repository's [gate] (perf-comment
        # judges them again): 36 windows, no effect / +25 % CPU / +5 % CPU (the threshold)
        effect, seed = {"pass": (0.0, 0), "fail": (0.25, 0), "inconclusive": (0.05, 1)}[decision]
        dump_duet(drawn_run(36, cpu_effect=effect, seed=seed), tmp_path / "windows.json")
        v = verdict(decision, pairs=36, statistical_decision=decision)
        dump_verdict(v, tmp_path / "verdict.json")
    return tmp_path
