"""The newcomer's path: `perfci stack up`, a search, `perfci stack down`, nothing left."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from ci import stack
from ci.errors import StackError
from ci.settings import StackSettings

pytestmark = [pytest.mark.stack, pytest.mark.timeout(180)]


def perfci(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci.cli", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_stack_up_search_down_leaves_no_process(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        {
            "PERFCI_HOME": str(tmp_path / "run"),
            "PERFCI_PG_PORT": str(stack.free_port()),
            "PERFCI_REDIS_PORT": str(stack.free_port()),
            "PERFCI_SERVICE_PORT": str(stack.free_port()),
        }
    )
    up = perfci("stack", "up", "--embedder", "hash", "--workers", "2", env=env)
    assert up.returncode == 0, up.stderr
    try:
        _search_then_down(env)
    finally:
        perfci("stack", "down", env=env)


def _search_then_down(env: dict[str, str]) -> None:
    status = perfci("stack", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"] is True
    pids = [p["pid"] for p in info["components"].values()]
    service = psutil.Process(info["components"]["service"]["pid"])
    workers = [c.pid for c in service.children(recursive=True)]
    assert len(workers) >= 2  # two workers (and multiprocessing's helper)
    seed = perfci("seed", "--docs", "300", env=env)
    assert seed.returncode == 0, seed.stderr
    resp = httpx.get(info["service_url"] + "/v1/search", params={"q": "telescopes", "k": 3})
    assert resp.status_code == 200
    assert len(resp.json()["results"]) == 3
    down = perfci("stack", "down", env=env)
    assert down.returncode == 0, down.stderr
    for pid in [*pids, *workers]:
        assert not stack.pid_alive(pid), f"pid {pid} still running after stack down"
    after = perfci("stack", "status", "--json", env=env)
    assert json.loads(after.stdout)["running"] is False


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        settings = StackSettings(
            run_dir=tmp_path,
            pg_port=busy,
            redis_port=stack.free_port(),
            service_port=stack.free_port(),
        )
        with pytest.raises(StackError, match=f"port {busy} on 127.0.0.1 is busy"):
            stack.up(settings)
    assert not (tmp_path / "stack.json").exists()


def test_failed_start_stops_what_was_started(tmp_path: Path) -> None:
    """The service cannot start (bad setting): PostgreSQL and Valkey must be stopped too."""
    settings = StackSettings(
        run_dir=tmp_path,
        pg_port=stack.free_port(),
        redis_port=stack.free_port(),
        service_port=stack.free_port(),
        ready_timeout_s=30,
        service_env={"SEARCH_INDEX_MODE": "bogus"},
    )
    before = {p.pid for p in psutil.process_iter()}
    with pytest.raises(StackError, match="SEARCH_INDEX_MODE='bogus' is invalid"):
        stack.up(settings)
    ports = {str(settings.pg_port), str(settings.redis_port)}  # others may run servers too
    leftover = [
        p
        for p in psutil.process_iter(["name", "status", "cmdline"])
        if p.pid not in before
        and p.info["status"] != psutil.STATUS_ZOMBIE
        and p.info["name"] in ("postgres", "valkey-server")
        and ports & set(" ".join(p.info["cmdline"] or []).replace(":", " ").split())
    ]
    assert leftover == []


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ, PERFCI_HOME=str(tmp_path), PERFCI_PG_PORT="not-a-port")
    res = perfci("stack", "status", env=env)
    assert res.returncode == 2
    assert "PERFCI_PG_PORT='not-a-port' is invalid" in res.stderr
    assert "Traceback" not in res.stderr
    res = perfci("stack", "frobnicate", env=dict(os.environ))
    assert res.returncode == 2
