"""A program the stack needs is missing: a clear error naming it, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci import stack
from ci.cli import main
from ci.errors import StackError
from ci.stack import tools


@pytest.fixture
def no_runuser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only an empty folder: no runuser (nor anything else) on it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_runuser_is_found_on_path() -> None:
    found = tools.runuser()
    assert Path(found).is_absolute()
    assert Path(found).name == "runuser"


def test_missing_runuser_names_it_and_the_fix(no_runuser: Path) -> None:
    del no_runuser
    with pytest.raises(StackError, match=r"runuser is not on PATH.*Add /usr/sbin to PATH"):
        tools.runuser()


def test_as_root_postgres_needs_runuser(no_runuser: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    del no_runuser
    monkeypatch.setattr(tools, "is_root", lambda: True)
    with pytest.raises(StackError, match="runuser is not on PATH"):
        tools.check_tools(postgres=True, valkey=True)
    tools.check_tools(postgres=False, valkey=True)  # an external PostgreSQL needs no runuser


def test_unprivileged_postgres_needs_no_runuser(
    no_runuser: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del no_runuser
    monkeypatch.setattr(tools, "is_root", lambda: False)
    tools.check_tools(postgres=True, valkey=True)


def test_the_wheels_programs_are_found() -> None:
    bin_dir = tools.pg_bin_dir()
    assert all((bin_dir / name).is_file() for name in tools.PG_PROGRAMS)
    assert tools.valkey_binary().name == "valkey-server"


def test_stack_up_without_runuser_exits_2_and_starts_nothing(
    tmp_path: Path,
    no_runuser: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    del no_runuser
    monkeypatch.setattr(tools, "is_root", lambda: True)
    for name in ("PG", "REDIS", "SERVICE"):
        monkeypatch.setenv(f"PERFCI_{name}_PORT", str(stack.free_port()))
    monkeypatch.setenv("PERFCI_HOME", str(tmp_path / "run"))
    assert main(["stack", "up", "--embedder", "hash"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: runuser is not on PATH"), err
    assert not (tmp_path / "run" / "stack.json").exists()
    assert not (tmp_path / "run" / "valkey").exists()  # Valkey was not started either


@pytest.mark.skipif(os.geteuid() != 0, reason="runuser is needed only as root")
def test_perfci_run_as_root_without_runuser_is_a_clear_error(tmp_path: Path) -> None:
    """The reported case: as root with /usr/sbin off PATH, ``perfci run`` on its own stack."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty), PERFCI_HOME=str(tmp_path / "run"))
    proc = subprocess.run(
        [sys.executable, "-m", "ci.cli", "run", "--profile", "smoke", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error: runuser is not on PATH" in proc.stderr
    assert "Traceback" not in proc.stderr
