"""A Valkey of one test's own, started and stopped by PID (the cache-link tests stop it
with SIGSTOP to stall it, and need its PID for that)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci import stack
from ci.settings import StackSettings


@dataclass(frozen=True)
class OwnValkey:
    url: str
    pid: int


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[OwnValkey]:
    settings = StackSettings(
        run_dir=tmp_path / "valkey",
        pg_port=stack.free_port(),
        service_port=stack.free_port(),
        redis_port=stack.free_port(),
    )
    comp = stack.start_valkey(settings)
    assert comp.pid is not None, "start_valkey returned no pid"
    try:
        yield OwnValkey(comp.url, comp.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(comp.pid, signal.SIGCONT)  # stopped, it would not act on SIGTERM
        stack.stop_pid(comp.pid, "valkey")


@pytest.fixture
def valkey_url(own_valkey: OwnValkey) -> str:
    return own_valkey.url
