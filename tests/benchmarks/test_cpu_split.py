"""benchmarks/cpu_split.py: the CPU counters (psutil) and the py-spy samples sorted into parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from benchmarks.cpu_split import _children_cpu, _machine_cpu, _threads, spy_parts

LOOP = "thread (1): MainThread;run (uvicorn/server.py:86);Runner.run (asyncio/runners.py:118)"


def test_samples_go_to_the_first_part_in_their_stack(tmp_path: Path) -> None:
    raw = tmp_path / "service-200.txt"
    raw.write_text(
        "\n".join(
            [
                f"{LOOP} 50",  # the loop's own C code
                f"{LOOP};search (service/http/routes/search.py:40);"
                "call (service/cache/redis.py:276);execute (redis/asyncio/client.py:9) 20",
                f"{LOOP};search (service/http/routes/search.py:40) 10",
                f"{LOOP};fetch (asyncpg/connection.py:7) 15",
                f"{LOOP};inc (prometheus_client/values.py:3) 5",
                "thread (2): asyncio_0;run (onnxruntime/session.py:1) 400",  # not the loop
                "not a sample line",
            ]
        )
    )
    parts = spy_parts(raw)
    # redis wins over http: the first part of SPY_PARTS found anywhere in the stack
    assert parts == {"loop": 0.5, "redis": 0.2, "database": 0.15, "http": 0.1, "metrics": 0.05}
    assert list(parts) == ["loop", "redis", "database", "http", "metrics"]  # largest first


def test_an_empty_profile_has_no_parts(tmp_path: Path) -> None:
    raw = tmp_path / "empty.txt"
    raw.write_text("")
    assert spy_parts(raw) == {}


def _burn(seconds: float, then_sleep: float = 0.0) -> subprocess.Popen[bytes]:
    """A child process that spends ``seconds`` of CPU, then sleeps ``then_sleep``."""
    code = (
        f"import time\nend = time.process_time() + {seconds}\n"
        f"while time.process_time() < end: pass\ntime.sleep({then_sleep})"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_reaped_child_counts_in_its_parent() -> None:
    me = os.getpid()
    before = _children_cpu(me)
    _burn(0.3).wait(timeout=30)
    assert 0.25 <= _children_cpu(me) - before < 2.0


def test_a_live_child_counts_in_its_parent() -> None:
    child = _burn(0.3, then_sleep=60)
    try:
        deadline = time.monotonic() + 30
        while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.3 < deadline - time.monotonic():
            time.sleep(0.01)
        assert child.poll() is None  # still running, so counted as a live child
        assert _children_cpu(os.getpid()) >= 0.3
    finally:
        child.kill()
        child.wait(timeout=30)


def test_the_event_loop_thread_is_the_process_id() -> None:
    threads = _threads(os.getpid())
    assert os.getpid() in threads
    assert threads[os.getpid()] > 0


def test_machine_cpu_grows_while_a_process_works() -> None:
    before = _machine_cpu()
    _burn(0.3).wait(timeout=30)
    assert _machine_cpu() - before >= 0.25
