"""Every `perfci` command and flag of before the package split still parses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ci.cli import build_parser, main

# command -> flags it must accept (the CLI of before issue 11, plus `report`)
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("stack", "up"): ("--run-dir", "--pg-port", "--redis-port", "--port", "--workers",
                      "--server", "--embedder", "--index-mode"),
    ("stack", "down"): ("--run-dir", "--pg-port", "--redis-port", "--port"),
    ("stack", "status"): ("--run-dir", "--json"),
    ("seed",): ("--docs", "--embedder", "--seed", "--force", "--run-dir"),
    ("compare",): ("--candidate", "--config", "--report", "--seed", "--base-ref", "--head-ref"),
    ("comment",): ("--repo", "--pr", "--report", "--config", "--api-url", "--sha", "--run-url",
                   "--artifact-url", "--dry-run"),
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
    ("ab",): ("--base", "--candidate", "--pairs", "--profile", "--seed", "--out", "--config",
              "--scenario"),
    ("baseline",): ("--profile", "--out"),
    ("gate",): ("--base", "--candidate", "--out", "--repo", "--config", "--seed",
                "--harness-source", "--harness-revision", "--no-shapes", "--rejudge"),
    ("calibrate",): ("--aa", "--slowed", "--slowdown", "--ref", "--seed", "--out", "--config"),
    ("chaos",): ("--experiment", "--rate", "--duration", "--driver", "--out"),
    ("report",): (),
}  # fmt: skip


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
