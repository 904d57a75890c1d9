"""A perf-pr artifact and its workflow_run event, as the perf-comment job receives them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateDecision, dump_verdict
from ci.post.event import Action, WorkflowRunEvent
from ci.render.gate import GateLinks
from ci.results.duet import DuetRun, dump_duet
from ci.settings import load_perf_config
from ci.settings.gate import GateRule
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import verdict
from tests.ci.render.gate_verdicts import BASE_SHA, MERGE_SHA

HEAD = "a" * 40
LINKS = GateLinks("https://github.com/acme/search/actions/runs/100/attempts/1")
RULE = load_perf_config(None).gate.rule  # the repository's perf.toml [gate], as perf-comment's
#: Windows that judge to each decision under RULE: 36 windows, no effect / +25 % CPU / +5 %
#: CPU (the threshold itself)
WINDOWS = {"pass": (0.0, 0), "fail": (0.25, 0), "inconclusive": (0.05, 1)}


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


def event_file(tmp_path: Path) -> Path:
    """:func:`event` as ``$GITHUB_EVENT_PATH`` holds it."""
    e = event()
    payload: dict[str, object] = {
        "action": e.action,
        "repository": {"full_name": e.repo},
        "workflow_run": {
            "id": e.run_id,
            "run_attempt": e.run_attempt,
            "name": e.workflow,
            "event": e.event,
            "head_sha": e.head_sha,
            "html_url": e.run_url,
            "conclusion": e.conclusion,
            "pull_requests": [],
        },
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return path


def artifact(
    tmp_path: Path,
    decision: GateDecision | None = "pass",
    changed: tuple[str, ...] = (),
    rule: GateRule = RULE,
    **record: Any,
) -> GateFolder:
    """The folder perf-pr uploads: pr.json and, with a ``decision``, the gate's verdict and
    the windows it was judged from."""
    folder = GateFolder(tmp_path)
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
    folder.pr.write_text(json.dumps({k: v for k, v in pr.items() if v is not None}))
    if decision is not None:
        effect, seed = WINDOWS[decision]
        run = as_measured(drawn_run(36, cpu_effect=effect, seed=seed))
        dump_duet(run, folder.windows)
        v = verdict(
            run, rule=rule, stopped="last look", changed=changed,
            base_ref="HEAD^1", base_sha=BASE_SHA, candidate_sha=MERGE_SHA,
        )  # fmt: skip
        assert v.judgement.decision == decision, v.judgement.reasons
        d = run.design
        design = msgspec.structs.replace(
            v.design, rate=d.rate, window_s=d.window_s, warmup_windows=d.warmup_windows,
            unique_fraction=d.unique_fraction, write_fraction=d.write_fraction, workers=d.workers,
            burst_gap_s=d.burst_gap_s, stream_fraction=d.stream_fraction, burst_vus=d.burst_vus,
            burst_iterations=d.burst_iterations, restart_every=d.restart_every,
        )  # fmt: skip
        dump_verdict(
            msgspec.structs.replace(v, design=design, order_seed=d.order_seed), folder.verdict
        )
    return folder


def as_measured(run: DuetRun) -> DuetRun:
    """``run`` with each window started when the one before it ended, as a gate writes it."""
    t0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    return msgspec.structs.replace(
        run,
        windows=tuple(
            msgspec.structs.replace(
                w, started_at=(t0 + timedelta(seconds=11 * w.index)).isoformat(timespec="seconds")
            )
            for w in run.windows
        ),
    )
