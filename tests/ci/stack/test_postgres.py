"""The root homes under /var/tmp: one that outlived its run folder is swept, no other."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ci import stack
from ci.stack.postgres import HOME_OWNER, pg_home, sweep_orphan_homes
from ci.stack.process import is_root


def _home(root: Path, name: str, owner: Path | None, postmaster: int | None = None) -> Path:
    home = root / f"perfci-{name}"
    (home / "pgdata").mkdir(parents=True)
    if owner is not None:
        (home / HOME_OWNER).write_text(f"{owner}\n")
    if postmaster is not None:
        (home / "pgdata" / "postmaster.pid").write_text(f"{postmaster}\n/data\n")
    return home


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    assert not stack.pid_alive(child.pid)
    return child.pid


def test_only_a_home_whose_run_folder_is_gone_and_whose_server_is_down_is_swept(
    tmp_path: Path,
) -> None:
    root = tmp_path / "var-tmp"
    live_run = tmp_path / "run-live"
    live_run.mkdir()
    gone = tmp_path / "run-gone"
    orphan = _home(root, "orphan", gone)
    stale_pid = _home(root, "stale", gone, postmaster=_dead_pid())
    kept = {
        _home(root, "live", live_run),
        _home(root, "unknown", None),  # no owner file: its run folder is unknown
        _home(root, "running", gone, postmaster=os.getpid()),  # its server still runs
        root / "perfci-pginstall",
    }
    (root / "perfci-pginstall").mkdir()
    assert sorted(sweep_orphan_homes(root)) == sorted([orphan, stale_pid])
    assert not orphan.exists()
    assert not stale_pid.exists()
    assert all(home.exists() for home in kept)


@pytest.mark.stack
@pytest.mark.timeout(120)
def test_a_started_server_names_its_run_folder_in_its_home(tmp_path: Path) -> None:
    settings = stack.loopback_settings(tmp_path / "run")
    servers = stack.start_server_set(settings)
    try:
        home = pg_home(settings.run_dir)
        if is_root():
            assert (home / HOME_OWNER).read_text().strip() == str(settings.run_dir.resolve())
        assert (home / "pgdata" / "PG_VERSION").exists()
    finally:
        servers.close(remove_data=True)
    if is_root():
        assert not pg_home(settings.run_dir).exists()
