"""perfci calibrate: the plan, the candidate commits, the campaign's resume; one real campaign.

The real campaign (two A/A full gates on the test profile's small gate) is marked stack and
slow: run it under the measure lock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci.cli import main
from ci.errors import ConfigError, RunError
from ci.experiments.gate.calibrate import (
    CALIBRATION_FILE,
    CALIBRATION_MD,
    Case,
    GateOutcome,
    calibration_commit,
    full_gate,
    plan,
    run_calibration,
)
from ci.judge.calibration import load_calibration
from ci.render.gate_calibration import calibration_markdown
from tests.ci.experiments.gate.gitrepo import git

REPO = Path(__file__).resolve().parents[4]


def _toy_repo(root: Path) -> Path:
    repo = root / "toy"
    (repo / "service").mkdir(parents=True)
    (repo / "service" / "search.py").write_text('"""search"""\n')
    (repo / "service" / "settings.py").write_text(
        "class Settings:\n    debug_db_delay_ms: int = 0\n    debug_cpu_slowdown: float = 0.0\n"
    )
    git(root, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "toy")
    return repo


def _never(parent: str, candidate: str, folder: Path, seed: int) -> GateOutcome:
    raise AssertionError(f"no gate should run ({folder.name})")


@pytest.mark.parametrize(
    ("aa", "slowed", "slowdown", "message"),
    [
        (0, 0, 0.1, "ask for at least one verdict"),
        (-1, 3, 0.1, "ask for at least one verdict"),
        (2, 2, 0.0, r"--slowdown 0\.0: expected a share of CPU"),
        (2, 2, 11.0, r"--slowdown 11\.0"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    tmp_path: Path, aa: int, slowed: int, slowdown: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_calibration(tmp_path, "HEAD", aa, slowed, slowdown, tmp_path / "out", _never)
    assert not (tmp_path / "out").exists()


def test_an_unknown_ref_is_refused(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    with pytest.raises(ConfigError, match="--ref nope: not a commit"):
        run_calibration(repo, "nope", 1, 0, 0.1, tmp_path / "out", _never)


def test_the_plan_alternates_kinds_and_a_larger_one_extends_a_smaller_one() -> None:
    small = plan(2, 1, seed=7)
    assert [c.name for c in small] == ["aa-001", "slowed-001", "aa-002"]
    assert len({c.seed for c in plan(30, 10, seed=7)}) == 40
    large = plan(3, 2, seed=7)
    assert [c.name for c in large] == ["aa-001", "slowed-001", "aa-002", "slowed-002", "aa-003"]
    assert set(small) <= set(large)
    assert plan(2, 1, seed=8)[0].seed != small[0].seed


def test_the_candidates_differ_from_the_real_head_only_as_intended(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
    head = git(clone, "rev-parse", "HEAD")
    aa = calibration_commit(clone, head, Case("aa", 3, 12345), 0.1, tmp_path)
    assert git(clone, "rev-parse", f"{aa}^") == head
    assert git(clone, "diff", "--name-only", head, aa) == "service/search.py"
    added = [
        line
        for line in git(clone, "diff", "-U0", head, aa).splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert added == ["+# calibration aa 3 12345"]
    slowed = calibration_commit(clone, head, Case("slowed", 1, 99), 0.1, tmp_path)
    diff = git(clone, "diff", "-U0", head, slowed)
    assert git(clone, "diff", "--name-only", head, slowed).splitlines() == [
        "service/search.py",
        "service/settings.py",
    ]
    assert "-    debug_cpu_slowdown: float = 0.0\n+    debug_cpu_slowdown: float = 0.1" in diff
    assert "+# calibration slowed 1 99" in diff
    assert git(clone, "worktree", "list").count("\n") == 0  # the temporary worktrees are gone
    assert git(clone, "status", "--porcelain") == ""


def test_a_settings_file_without_the_knob_is_an_error(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    (repo / "service" / "settings.py").write_text("debug_cpu_slowdown = 0.0\n")
    git(repo, "commit", "-qam", "no knob")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(RunError, match=r"found 0 lines 'debug_cpu_slowdown: float = 0\.0'"):
        calibration_commit(repo, head, Case("slowed", 1, 5), 0.2, tmp_path)
    assert git(repo, "worktree", "list").count("\n") == 0


class _Gates:
    """Answers the gate from the candidate's diff; stops the campaign after ``stop_after``."""

    def __init__(self, repo: Path, stop_after: int | None = None) -> None:
        self.repo, self.stop_after = repo, stop_after
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, parent: str, candidate: str, folder: Path, seed: int) -> GateOutcome:
        if self.stop_after is not None and len(self.seen) == self.stop_after:
            folder.mkdir(parents=True)
            (folder / "windows.json").write_text("{}")  # half-written when stopped
            raise KeyboardInterrupt
        assert git(self.repo, "rev-parse", f"{candidate}^") == parent
        self.seen.append((folder.name, git(self.repo, "diff", parent, candidate), seed))
        folder.mkdir(parents=True)
        slowed = "debug_cpu_slowdown: float = 0.25" in self.seen[-1][1]
        if slowed:
            return GateOutcome("fail", 12, "decided", 0.24)
        return GateOutcome("pass", 12, "decided", 0.001 * len(self.seen))


def test_a_stopped_campaign_resumes_where_it_stopped_and_grows(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    out = tmp_path / "out"
    first = _Gates(repo, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_calibration(repo, "HEAD", 2, 1, 0.25, out, first, seed=11)
    assert [name for name, _, _ in first.seen] == ["aa-001", "slowed-001"]
    kept = load_calibration((out / CALIBRATION_FILE).read_bytes())
    assert [v.folder for v in kept.verdicts] == ["aa-001", "slowed-001"]
    assert (kept.parent, kept.seed, kept.slowdown) == (head, 11, 0.25)
    assert (out / "aa-002" / "windows.json").exists()

    with pytest.raises(ConfigError, match=r"--slowdown 0\.1 \(it has 0\.25\)"):
        run_calibration(repo, "HEAD", 2, 1, 0.1, out, _never)
    with pytest.raises(ConfigError, match=r"--seed 12 \(it has 11\)"):
        run_calibration(repo, "HEAD", 2, 1, 0.25, out, _never, seed=12)

    second = _Gates(repo)  # no --seed: the recorded one
    done = run_calibration(repo, "HEAD", 3, 1, 0.25, out, second)
    assert [name for name, _, _ in second.seen] == ["aa-002", "aa-003"]
    assert not (out / "aa-002" / "windows.json").exists()  # measured anew
    assert [s for _, _, s in first.seen + second.seen] == [
        c.seed for c in plan(3, 1, 11) if c.name != "slowed-002"
    ]
    assert [(v.folder, v.decision) for v in done.verdicts] == [
        ("aa-001", "pass"), ("slowed-001", "fail"), ("aa-002", "pass"), ("aa-003", "pass"),
    ]  # fmt: skip
    assert all(v.seconds >= 0 for v in done.verdicts)
    aa = next(s for s in done.summary if s.kind == "aa")
    assert (aa.verdicts, aa.passes, aa.fails, aa.inconclusive) == (3, 3, 0, 0)
    assert load_calibration((out / CALIBRATION_FILE).read_bytes()) == done
    assert (out / CALIBRATION_MD).read_text() == calibration_markdown(done)
    again = run_calibration(repo, "HEAD", 3, 1, 0.25, out, _never)  # nothing left to measure
    assert again == done
    # a campaign begun without the rule's CPU threshold takes it on; one that has it keeps it
    assert done.cpu_fail_threshold is None
    told = run_calibration(repo, "HEAD", 3, 1, 0.25, out, _never, cpu_fail_threshold=0.05)
    assert told.cpu_fail_threshold == 0.05
    kept = run_calibration(repo, "HEAD", 3, 1, 0.25, out, _never, cpu_fail_threshold=0.08)
    assert kept.cpu_fail_threshold == 0.05
    assert "With the CPU fail threshold of +5 %" in (out / CALIBRATION_MD).read_text()
    assert git(repo, "worktree", "list").count("\n") == 0
    assert git(repo, "rev-parse", "HEAD") == head


def test_a_file_that_is_not_a_calibration_is_refused(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / CALIBRATION_FILE).write_text('{"verdicts": []}')
    with pytest.raises(ConfigError, match="not a calibration this perfci can resume"):
        run_calibration(repo, "HEAD", 1, 0, 0.1, out, _never)


def test_the_command_refuses_bad_counts_with_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["calibrate", "--aa", "0", "--slowed", "0", "--out", str(tmp_path)]) == 2
    assert "--aa 0 --slowed 0: ask for at least one verdict" in capsys.readouterr().err


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_two_aa_gates_each_on_a_fresh_stack(tmp_path: Path) -> None:
    from tests.ci.experiments.gate.test_runner import _config

    head = git(REPO, "rev-parse", "HEAD")
    out = tmp_path / "calibrate"
    gate_one = full_gate(REPO, "HEAD", _config(), "test", progress=print)
    done = run_calibration(REPO, "HEAD", 2, 0, 0.1, out, gate_one, seed=3, progress=print)
    assert done.parent == head
    assert [v.folder for v in done.verdicts] == ["aa-001", "aa-002"]
    assert [v.decision for v in done.verdicts] == ["pass", "pass"]
    assert len({v.candidate for v in done.verdicts}) == 2
    assert len({v.seed for v in done.verdicts}) == 2
    for v in done.verdicts:
        assert git(REPO, "rev-parse", f"{v.candidate}^") == head
        assert v.windows == 12
        assert v.cpu_change is not None
        assert (out / v.folder / "verdict.json").exists()
    (aa,) = done.summary
    assert (aa.kind, aa.verdicts, aa.fails, aa.inconclusive) == ("aa", 2, 0, 0)
    assert aa.windows.median == 12
    assert "Passed (exit 0): 0 of 2 A/A verdicts FAILed" in (out / CALIBRATION_MD).read_text()
    assert run_calibration(REPO, "HEAD", 2, 0, 0.1, out, gate_one) == done  # resumed: all done
