"""What ``perfci gate`` refuses before its long set-up: a database link this host cannot make."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.errors import StackError
from ci.experiments.gate.runner import GateRequest, run_gate
from ci.judge.gate_verdict import Revision
from ci.settings import PerfConfig, load_perf_config
from ci.settings.gate import GateConfig, GateDesign
from ci.stack import netns


def test_a_database_link_without_root_stops_the_gate_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "is_root", lambda: False)
    config = PerfConfig(
        sla=load_perf_config().sla, gate=GateConfig(design=GateDesign(db_rtt_ms=4.0))
    )
    request = GateRequest(
        repo=tmp_path / "no-repo",  # never reached: no checkout, no venv, no stack
        base=Revision("main", "a" * 40),
        candidate=Revision("pr", "b" * 40),
        out_dir=tmp_path / "gate",
        config=config,
        machine_class="test",
        harness_source="base revision",
        harness_revision="a" * 40,
    )
    with pytest.raises(StackError, match=r"db_rtt_ms = 4\.0 needs root .*: set db_rtt_ms = 0"):
        run_gate(request)
    assert not (tmp_path / "gate").exists()
