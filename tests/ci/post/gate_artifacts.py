"""A perf-pr artifact and its workflow_run event, as the perf-comment job receives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci.judge.gate_verdict import GateDecision, dump_verdict
from ci.post.event import Action, WorkflowRunEvent
from ci.render.gate import GateLinks
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
        dump_verdict(verdict(decision), tmp_path / "verdict.json")
    return tmp_path
