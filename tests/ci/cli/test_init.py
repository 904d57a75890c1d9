"""Every `perfci` command and flag of before the package split still parses."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from ci import stack
from ci.cli import build_parser, main
from ci.cli.common import EXIT_INTERRUPTED

# command -> flags it must accept
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("stack", "up"): ("--run-dir", "--pg-port", "--redis-port", "--port", "--workers",
                      "--server", "--embedder", "--index-mode"),
    ("stack", "down"): ("--run-dir", "--pg-port", "--redis-port", "--port"),
    ("stack", "status"): ("--run-dir", "--json"),
    ("seed",): ("--docs", "--embedder", "--seed", "--force", "--run-dir"),
    ("comment",): ("--event", "--report", "--config", "--api-url", "--artifact-url",
                   "--bot-login", "--max-wait", "--dry-run"),
    ("sweep", "index"): ("--ef-search", "--probes", "--m", "--ef-construction", "--lists",
                         "--vector-type", "--queries", "--concurrency", "--out",
                         "--drop-existing"),
    ("sweep", "pool"): ("--values", "--profile", "--scenario", "--repeat", "--seed",
                        "--time-scale", "--config", "--out"),
    ("sweep", "workers"): ("--values", "--profile", "--scenario", "--repeat", "--seed",
                           "--time-scale", "--config", "--out"),
    ("run",): ("--profile", "--scenario", "--target", "--out", "--config", "--time-scale",
               "--embedder", "--profile-cpu", "--profile-memory", "--run-dir"),
    ("vegeta-targets",): ("--query-log", "--base-url", "--out", "--count", "--seed"),
    ("baseline",): ("--profile", "--out"),
    ("gate",): ("--base", "--candidate", "--out", "--repo", "--config", "--seed",
                "--harness-source", "--harness-revision", "--no-shapes", "--rejudge", "--pr",
                "--pr-head", "--run-id", "--run-attempt", "--merge-checkout"),
    ("calibrate",): ("--aa", "--slowed", "--slowdown", "--ref", "--seed", "--out", "--config"),
    ("chaos",): ("--experiment", "--rate", "--duration", "--driver", "--out"),
    ("report",): (),
    ("diff",): ("--out",),
}  # fmt: skip


def test_the_retired_commands_are_gone(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ab", "compare"):
        assert main([name, "--help"]) == 2
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_every_command_and_flag_parses(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in COMMANDS[command]:
        assert flag in text, f"perfci {' '.join(command)} lost {flag}"


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_ci_cli_runs_the_same_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ci.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("stack", "run", "report", "chaos", "sweep"):
        assert name in proc.stdout


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigterm_stops_a_run_and_every_server_it_started(tmp_path: Path) -> None:
    """A cancelled CI job (SIGTERM) must not leave PostgreSQL, Valkey or the service up."""
    home = tmp_path / "home"
    ports = [str(stack.free_port()) for _ in range(3)]
    cmd = [sys.executable, "-m", "ci.cli", "run", "--profile", "test", "--scenario", "ramp"]
    cmd += ["--run-dir", str(home), "--pg-port", ports[0], "--redis-port", ports[1]]
    cmd += ["--port", ports[2], "--out", str(tmp_path / "out")]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:  # until the load runs: every server is up then
            seen.append(line)
            if "scenario ramp" in line:
                break
        else:
            pytest.fail("the run ended before its scenario: " + "".join(seen))
        state = stack.load_state(home)
        assert state is not None, "a running stack has its state file"
        pids = [c.pid for c in (state.postgres, state.redis, state.service) if c.pid]
        assert len(pids) == 3, state
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == EXIT_INTERRUPTED, rest
        assert "error: interrupted" in rest
        assert "Traceback" not in rest
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid
