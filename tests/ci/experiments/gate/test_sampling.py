"""The process figures a gate window reads: CPU and RSS of a process family, backends' CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from ci.errors import RunError
from ci.experiments.gate.sampling import (
    RssSampler,
    backend_cpu_delta,
    cpu_of,
    process_cpu_s,
    process_rss_mb,
)

GONE = 2**22 + 12345  # above the kernel's default pid_max


def test_cpu_of_a_gone_process_is_an_error() -> None:
    assert process_cpu_s(os.getpid()) > 0
    with pytest.raises(RunError, match="is gone"):
        process_cpu_s(GONE)


def test_backend_cpu_counts_persistent_backends_by_delta_and_new_ones_from_birth() -> None:
    before = {10: 1.5, 11: 0.25, 12: 4.0}  # 12 exits during the window: not seen after
    after = {10: 2.0, 11: 0.25, 13: 0.125}  # 13 is born during the window
    assert backend_cpu_delta(before, after) == pytest.approx(0.5 + 0.0 + 0.125)


def test_rss_of_a_process_family() -> None:
    assert process_rss_mb(os.getpid()) > 10
    with pytest.raises(RunError, match="is gone"):
        process_rss_mb(GONE)


def test_a_family_counts_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        alone = process_rss_mb(child.pid)
        assert process_rss_mb(os.getpid()) > alone > 1
        assert cpu_of(child.pid) is not None
    finally:
        child.kill()
        child.wait()
    assert cpu_of(child.pid) is None


def test_the_sampler_keeps_the_peak_and_stops_with_its_block() -> None:
    start = process_rss_mb(os.getpid())
    with RssSampler({"base": os.getpid()}) as sampler:
        ballast = bytearray(64 * 2**20)  # 64 MB, touched so that it is resident
        ballast[::4096] = b"x" * len(ballast[::4096])
        time.sleep(0.8)
    del ballast
    assert sampler.peak["base"] >= start + 48  # the ballast, seen while it lived
    assert not any(t.name == "rss-sampler" for t in threading.enumerate())
    assert sampler.marked == {}  # no mark asked for


def test_the_mark_is_the_first_sample_after_its_time() -> None:
    with RssSampler({"base": os.getpid()}, mark_after_s=0.4) as sampler:
        time.sleep(0.2)
        assert sampler.marked == {}
        time.sleep(0.9)
        marked = sampler.marked["base"]
        ballast = bytearray(64 * 2**20)  # grows after the mark: not in it
        ballast[::4096] = b"x" * len(ballast[::4096])
        time.sleep(0.6)
    del ballast
    assert sampler.marked["base"] == marked
    assert sampler.peak["base"] >= marked + 48
