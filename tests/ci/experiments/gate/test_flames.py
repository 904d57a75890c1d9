"""py-spy on a real process: the flame graphs stay on a FAIL and go otherwise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ci.experiments.gate.flames import (
    Recorded,
    SideProfiles,
    keep_flames,
    start_profiles,
    stop_profiles,
)
from ci.judge.gate_folder import GateFolder
from ci.measure.diagnose import find_py_spy

pytestmark = pytest.mark.skipif(find_py_spy() is None, reason="py-spy is a dev dependency")

SPIN = "import time\nt = time.time()\nwhile time.time() - t < 30:\n    sum(range(10_000))\n"


def _record(folder: GateFolder) -> Recorded:
    procs = {side: subprocess.Popen([sys.executable, "-c", SPIN]) for side in ("base", "candidate")}
    try:
        messages: list[str] = []
        profilers = start_profiles(
            {side: p.pid for side, p in procs.items()}, folder, 30, messages.append
        )
        assert set(profilers) == {"base", "candidate"}, messages
        subprocess.run([sys.executable, "-c", "import time; time.sleep(2)"], check=True)
        return stop_profiles(profilers, messages.append)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_a_fail_keeps_both_sides_svgs_and_the_differential_one(tmp_path: Path) -> None:
    folder = GateFolder(tmp_path)
    recorded = _record(folder)
    names = keep_flames(folder, recorded, failed=True)
    assert names == ("profiles/base.svg", "profiles/candidate.svg", "profiles/flame-diff.svg")
    for name in names:
        svg = (tmp_path / name).read_text()
        assert "<svg" in svg, name
        assert "sum" in svg or "&lt;module&gt;" in svg, name  # the spinning process's frames
    assert list(folder.profiles.glob("*.txt"))  # the collapsed stacks stay beside them


def test_a_pass_keeps_no_profiles(tmp_path: Path) -> None:
    folder = GateFolder(tmp_path)
    recorded = _record(folder)
    assert keep_flames(folder, recorded, failed=False) == ()
    assert not folder.profiles.exists()


def test_profiles_follow_the_services_across_a_restart(tmp_path: Path) -> None:
    folder = GateFolder(tmp_path)
    messages: list[str] = []
    profiles = SideProfiles(folder, 30, messages.append)
    pids: list[dict[str, int]] = []
    for _ in range(2):  # the first processes, then the restarted ones
        procs = {s: subprocess.Popen([sys.executable, "-c", SPIN]) for s in ("base", "candidate")}
        try:
            pids.append({side: p.pid for side, p in procs.items()})
            profiles.start(pids[-1])
            # long enough for py-spy to attach to each process and sample it on a busy machine
            subprocess.run([sys.executable, "-c", "import time; time.sleep(3)"], check=True)
            profiles.stop()
        finally:
            for p in procs.values():
                p.kill()
                p.wait()
    recorded = profiles.recorded()
    for side in ("base", "candidate"):
        raw = [f for f in recorded.sides[side] if f.kind == "raw"]
        assert {f.path.name.split(".")[2] for f in raw} == {str(p[side]) for p in pids}, messages
    assert len(recorded.files) == sum(len(fs) for fs in recorded.sides.values())
    names = keep_flames(folder, recorded, failed=True)  # both processes' stacks, one graph
    assert names == ("profiles/base.svg", "profiles/candidate.svg", "profiles/flame-diff.svg")
    samples = {side: _samples(folder.profiles / f"{side}.svg") for side in ("base", "candidate")}
    for side in ("base", "candidate"):  # each side's graph holds both of its processes' samples
        raw = [f for f in recorded.sides[side] if f.kind == "raw"]
        per_process = [
            sum(
                int(line.rpartition(" ")[2])
                for line in f.path.read_text().splitlines()
                if line.strip()
            )
            for f in raw
        ]
        assert min(per_process) > 0, per_process  # both processes were sampled...
        assert samples[side] == sum(per_process), per_process  # ...and the graph holds all


def _samples(svg: Path) -> int:
    heading = re.search(r": (\d+) samples</text>", svg.read_text())
    assert heading is not None
    return int(heading.group(1))
