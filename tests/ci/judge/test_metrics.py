from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from ci.judge.metrics import cpu_ms_per_request
from ci.results import Resources, ResourceSample, RunResults

RunFactory = Callable[..., RunResults]


def test_cpu_ms_per_request_integrates_each_process_samples(make_run: RunFactory) -> None:
    run = make_run("a")
    scenario = run.scenarios[0]
    samples = (
        # worker 1: 50 % of a core for two 1 s intervals; its first sample only starts the clock
        ResourceSample(0.0, 1, "worker", 100.0, 99.0, 0),
        ResourceSample(1.0, 1, "worker", 100.0, 50.0, 0),
        ResourceSample(2.0, 1, "worker", 100.0, 50.0, 0),
        # worker 2: 100 % for one 2 s interval
        ResourceSample(0.5, 2, "worker", 100.0, 0.0, 0),
        ResourceSample(2.5, 2, "worker", 100.0, 100.0, 0),
    )
    s = msgspec.structs.replace(
        scenario, requests=1000, resources=Resources(samples=samples, peak_rss_mb=100.0)
    )
    assert cpu_ms_per_request(s) == pytest.approx(3.0)  # 3 CPU seconds / 1000 requests
    empty = msgspec.structs.replace(s, resources=Resources(samples=(), peak_rss_mb=None))
    assert cpu_ms_per_request(empty) is None
    assert cpu_ms_per_request(msgspec.structs.replace(s, requests=0)) is None
