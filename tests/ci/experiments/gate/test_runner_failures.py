"""A candidate that breaks gets a FAIL verdict with its cause, never a crash (a real, short gate).

Each candidate is a commit on a clone of this repository whose service or loader is broken
on purpose: one that answers 500 to a share of its searches, one that exits during the
windows, one that never becomes ready, one whose loader fails, one whose exact-scan service
(the recall check's truth) does not start. The base is the unbroken commit below it. Run it
under the measure lock.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from ci.errors import PerfCIError
from ci.experiments.gate.runner import GateRequest, run_gate
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import GateVerdict, Revision, load_verdict
from ci.results.duet import load_duet
from ci.settings import PerfConfig, load_perf_config
from ci.settings.gate import GateConfig, GateDesign, GateMetric, GateRule

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[4]
SMALL = GateConfig(
    GateRule(
        looks=(12,),
        metrics=(
            GateMetric("cpu_ms_per_request", "lower", 0.05),
            GateMetric("error_rate", "lower", 0.001, "absolute"),
        ),
    ),
    GateDesign(
        rate=80.0,
        window_s=2.0,
        docs=5000,
        embedder="hash",
        shapes=("ramp",),
        shape_time_scale=0.005,
        shape_vu_scale=0.2,
        budget_s=300.0,
        shapes_reserve_s=60.0,
        burst_gap_s=0.0,  # 2-s windows: the bursts at once
        db_rtt_ms=0.0,
        micro_rounds=0,  # the micro-benchmarks run in test_runner.py and test_micro.py
    ),
)

#: An ASGI wrapper around the service: ``{on_search}`` runs for every search request.
_WRAPPER = """
    return _broken(app)


def _broken(inner: Any) -> Any:
    import os

    count = 0

    async def reply(send: Any, status: int) -> None:
        await send({{"type": "http.response.start", "status": status, "headers": []}})
        await send({{"type": "http.response.body", "body": b"broken on purpose"}})

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        nonlocal count
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/readyz" and {never_ready}:
            return await reply(send, 503)
        if path == "/v1/search":
            count += 1
            {on_search}
        await inner(scope, receive, send)

    return asgi
"""


def _wrap(on_search: str = "pass", never_ready: bool = False) -> Callable[[str], str]:
    def edit(text: str) -> str:
        head, tail = text.rsplit("    return app\n", 1)
        body = _WRAPPER.format(on_search=on_search, never_ready=never_ready)
        return head + body + tail

    return edit


def _broken_loader(text: str) -> str:
    return text.replace(
        "    args = parser.parse_args(argv)\n",
        "    args = parser.parse_args(argv)\n"
        "    print('error: this loader is broken on purpose', file=sys.stderr)\n"
        "    return 2\n",
        1,
    )


def _exact_mode_exits(text: str) -> str:
    head, tail = text.rsplit("    return app\n", 1)
    exits = (
        '    if __import__("os").environ.get("SEARCH_INDEX_MODE") == "exact":\n'
        '        __import__("os")._exit(3)\n'
    )
    return head + exits + "    return app\n" + tail


BROKEN: dict[str, tuple[str, Callable[[str], str]]] = {
    # one search in ten answers 500: the windows fail it on error_rate, then the shape
    # scenarios' warm-up meets a 500
    "errors": (
        "service/http/app.py",
        _wrap("if count % 10 == 0:\n                return await reply(send, 500)"),
    ),
    # gone after 1,200 searches: the warm-up block has 640, a window 160
    "exits": ("service/http/app.py", _wrap("if count >= 1200:\n                os._exit(3)")),
    "never ready": ("service/http/app.py", _wrap(never_ready=True)),
    "loader": ("service/db/loader.py", _broken_loader),
    # its measured service is sound; the same code started in exact mode (the recall
    # check's truth) exits at once
    "exact scan": ("service/http/app.py", _exact_mode_exits),
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _gate(tmp_path: Path, broken: str) -> tuple[GateVerdict, GateFolder]:
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(REPO), str(clone)], check=True)
    base = _git(clone, "rev-parse", "HEAD")
    path, edit = BROKEN[broken]
    target = clone / path
    target.write_text(edit(target.read_text()))
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", broken)
    candidate = _git(clone, "rev-parse", "HEAD")
    repo_config = load_perf_config()
    out = tmp_path / "gate"
    request = GateRequest(
        repo=clone, base=Revision(base, base), candidate=Revision("pr", candidate), out_dir=out,
        config=PerfConfig(sla=repo_config.sla, gate=SMALL),
        machine_class="test", harness_source="base revision", harness_revision=base, seed=7,
        venv_root=REPO / ".perfci" / "venvs",
    )  # fmt: skip
    verdict = run_gate(request, progress=print)
    folder = GateFolder(out)
    assert load_verdict(folder.verdict) == verdict  # the verdict is written
    return verdict, folder


def _cause(v: GateVerdict) -> str:
    j = v.judgement
    assert (j.decision, j.conclusion) == ("fail", "failure"), j.reasons
    assert v.failure is not None
    assert j.reasons[0] == f"the candidate failed: {v.failure}"
    return v.failure


def test_a_candidate_answering_500s_fails_and_keeps_the_windows_decision(tmp_path: Path) -> None:
    v, folder = _gate(tmp_path, "errors")
    cause = _cause(v)
    assert v.judgement.statistical_decision == "fail"  # the windows' decision stays
    assert any(r.startswith("error_rate +") for r in v.judgement.reasons)
    assert "the shape scenarios failed on it: warm-up search" in cause
    assert "500 Internal Server Error" in cause
    assert len(load_duet(folder.windows).measured) == 12


def test_a_candidate_that_exits_during_the_windows_fails(tmp_path: Path) -> None:
    v, folder = _gate(tmp_path, "exits")
    assert "its service exited during the windows" in _cause(v)
    assert load_duet(folder.windows).windows  # the windows measured before it died


def test_a_candidate_that_never_gets_ready_fails(tmp_path: Path) -> None:
    v, folder = _gate(tmp_path, "never ready")
    assert "its service started but is not ready" in _cause(v)
    assert v.stopped == "candidate failed"
    assert load_duet(folder.windows).windows == ()


def test_a_candidate_whose_loader_fails_fails(tmp_path: Path) -> None:
    v, _ = _gate(tmp_path, "loader")
    cause = _cause(v)
    assert "its own loader failed" in cause
    assert "loading the corpus failed (exit 2)" in cause


def test_a_candidate_whose_exact_scan_service_does_not_start_fails(tmp_path: Path) -> None:
    v, folder = _gate(tmp_path, "exact scan")
    assert "its exact-scan service did not start" in _cause(v)
    assert v.judgement.statistical_decision == "pass"  # the windows' decision stays
    assert len(load_duet(folder.windows).measured) == 12


def test_set_up_beyond_its_own_budget_is_a_clear_error(tmp_path: Path) -> None:
    head = _git(REPO, "rev-parse", "HEAD")
    tight = GateConfig(SMALL.rule, msgspec.structs.replace(SMALL.design, setup_budget_s=0.001))
    repo_config = load_perf_config()
    request = GateRequest(
        repo=REPO, base=Revision(head, head), candidate=Revision(head, head),
        out_dir=tmp_path / "gate",
        config=PerfConfig(sla=repo_config.sla, gate=tight),
        machine_class="test", harness_source="base revision", harness_revision=head,
        venv_root=REPO / ".perfci" / "venvs",
    )  # fmt: skip
    with pytest.raises(
        PerfCIError,
        match=r"set-up took \d+ s by the end of building the venvs, beyond "
        r"gate\.setup_budget_s = 0\.001 s",
    ):
        run_gate(request)
    assert not GateFolder(tmp_path / "gate").verdict.exists()
