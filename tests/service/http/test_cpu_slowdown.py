"""SEARCH_DEBUG_CPU_SLOWDOWN: a search burns the configured share more CPU than its own work."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.http.cpu_slowdown import CpuSlowdownMiddleware, burn


def _work(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Two slices of CPU work with an await between them (as a request has)."""
    _work(0.02)
    await asyncio.sleep(0.01)  # time off the CPU is not the request's work
    _work(0.02)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _cpu_of(path: str, slowdown: float) -> float:
    wrapped = CpuSlowdownMiddleware(app, slowdown)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        t0 = time.thread_time()
        response = await client.get(path)
        assert response.status_code == 200
        return time.thread_time() - t0


@pytest.mark.timeout(30)
async def test_a_search_burns_the_share_of_its_own_cpu() -> None:
    plain = await _cpu_of("/v1/search?q=x", 0.0)
    slowed = await _cpu_of("/v1/search?q=x", 0.5)
    assert 0.04 <= plain < 0.06
    assert slowed - plain == pytest.approx(0.02, abs=0.008)  # 0.5 x 40 ms of own work


@pytest.mark.timeout(30)
async def test_other_routes_are_untouched() -> None:
    plain = await _cpu_of("/healthz", 0.0)
    slowed = await _cpu_of("/healthz", 1.0)
    assert slowed == pytest.approx(plain, abs=0.01)


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
