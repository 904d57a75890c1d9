"""SEARCH_DEBUG_CPU_SLOWDOWN: a search costs the configured share more CPU per request."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.http.cpu_slowdown import WINDOW, CpuSlowdownMiddleware, burn


def _work(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Two slices of CPU work with an await between them (as a request has)."""
    _work(0.002)
    await asyncio.sleep(0)
    _work(0.002)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _cpu_per_request(path: str, slowdown: float, n: int = 120) -> float:
    wrapped = CpuSlowdownMiddleware(app, slowdown)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(WINDOW):  # the first estimate of the CPU per request
            assert (await client.get(path)).status_code == 200
        t0 = time.process_time()
        for _ in range(n):
            assert (await client.get(path)).status_code == 200
        return (time.process_time() - t0) / n


async def _ratio(path: str, slowdown: float, n: int, pairs: int = 5) -> float:
    """Median over ``pairs`` side-by-side pairs of slowed / plain CPU per request.

    process_time counts every thread of the test process, so CPU another thread spends
    during one of the two measurements moves that pair's ratio; the median of pairs
    measured one right after the other is what the slowdown itself does.
    """
    ratios = []
    for _ in range(pairs):
        plain = await _cpu_per_request(path, 0.0, n)
        slowed = await _cpu_per_request(path, slowdown, n)
        ratios.append(slowed / plain)
    return statistics.median(ratios)


@pytest.mark.timeout(120)
async def test_a_search_costs_the_share_more_cpu() -> None:
    assert await _ratio("/v1/search?q=x", 0.25, n=100) == pytest.approx(1.25, abs=0.06)


@pytest.mark.timeout(120)
async def test_other_routes_are_untouched() -> None:
    assert await _ratio("/healthz", 1.0, n=60, pairs=3) == pytest.approx(1.0, abs=0.1)


def test_burn_spins_for_the_cpu_asked() -> None:
    t0 = time.thread_time()
    burn(0.03)
    assert 0.03 <= time.thread_time() - t0 < 0.045


def test_the_setting_is_validated() -> None:
    from service.errors import ConfigError
    from service.settings import Settings

    assert Settings.from_env({"SEARCH_DEBUG_CPU_SLOWDOWN": "0.1"}).debug_cpu_slowdown == 0.1
    assert Settings.from_env({}).debug_cpu_slowdown == 0.0
    with pytest.raises(ConfigError, match=r"SEARCH_DEBUG_CPU_SLOWDOWN=-1\.0 is invalid"):
        Settings.from_env({"SEARCH_DEBUG_CPU_SLOWDOWN": "-1"})
