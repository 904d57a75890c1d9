"""The gate's report folder as perfci gate leaves it: the verdict first, then its renderings."""

from __future__ import annotations

from pathlib import Path

from ci.experiments.gate.outputs import write_outputs
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import load_verdict
from ci.results.duet import dump_duet
from tests.ci.judge.duet_factory import drawn_run
from tests.ci.judge.gate_factory import sla_row, verdict


def test_the_folder_holds_the_verdict_summary_and_report(tmp_path: Path) -> None:
    folder = GateFolder(tmp_path / "gate")
    run = drawn_run(12, sd=0.02)
    dump_duet(run, folder.windows)
    shape = folder.shapes / "base" / "run-1" / "results.json"
    shape.parent.mkdir(parents=True)
    shape.write_text("{}")
    v = verdict(run, sla=[sla_row("pre-existing")])
    write_outputs(folder, v)
    assert load_verdict(folder.verdict) == v
    assert folder.summary.read_text().startswith("**Performance gate: PASS (12 measured pairs)**")
    html = folder.report.read_text()
    assert '<h1 class="pass">Performance gate: PASS</h1>' in html
    for name in ("verdict.json", "windows.json", "summary.md", "shapes/base/run-1/results.json"):
        assert f'<a href="{name}">' in html, name
    assert sorted(p.name for p in folder.root.iterdir()) == [
        "report.html", "shapes", "summary.md", "verdict.json", "windows.json",
    ]  # fmt: skip
