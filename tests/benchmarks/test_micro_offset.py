"""``python -m benchmarks.micro_offset``: one round each way on two real worktrees of HEAD."""

from __future__ import annotations

import pytest

from benchmarks.micro_offset import main


def test_one_round_prints_every_case_for_both_seedings(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("seed 0") for line in lines) == 4
    assert sum(line.startswith("per round") for line in lines) == 4
    assert all("median" in line for line in lines)


def test_rounds_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        main(["--rounds", "0"])
