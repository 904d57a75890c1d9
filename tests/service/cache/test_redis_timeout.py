"""``RedisLink``'s timeout measures Redis, not the event loop's backlog, against a real
Valkey: a reply that came in time but waited behind a busy loop is no failure; a stalled
Valkey (SIGSTOP) or a server that never answers is still cut at the timeout, and so is
the wait for a pooled connection; a call whose loop lags forever is cut at the cap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from service.cache.redis import SKIPPED, BreakerState, RedisLink, connect_client
from service.metrics import Metrics
from service.settings import Settings
from tests.harness import OwnValkey
from tests.service.cache.wire import total

pytestmark = [pytest.mark.stack, pytest.mark.timeout(60)]

TIMEOUT_MS = 50
TIMEOUT_S = TIMEOUT_MS / 1000
# what a timer and the task it cancels may take beyond their due time on a shared,
# loaded machine (2 cores): far below the cap (1 s) that a lag-extended call may reach
MARGIN_S = 0.25
CAP_S = 1.0  # service.cache.redis.REDIS_LAG_CAP_S, spelled out: the tests pin it


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """Valkey stalled: its sockets accept and buffer, it answers nothing (SIGSTOP)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _link(url: str, *, failures: int, timeout_ms: int = TIMEOUT_MS) -> RedisLink:
    """A link as the service builds it (its pool's timeouts from the same settings)."""
    client = connect_client(
        Settings.from_env({"REDIS_URL": url, "SEARCH_REDIS_TIMEOUT_MS": str(timeout_ms)})
    )
    assert client is not None
    return RedisLink(
        client,
        Metrics(),
        timeout_s=timeout_ms / 1000,
        breaker_failures=failures,
        breaker_cooldown_s=60.0,
    )


def state(link: RedisLink) -> BreakerState:
    return link.breaker.state


def errors(link: RedisLink) -> float:
    return total(link.metrics.redis_errors)


def extensions(link: RedisLink) -> float:
    return total(link.metrics.redis_lag_extensions)


def cut_by(link: RedisLink) -> float:
    """How long a call to a stalled Redis may take: the timeout and a margin, or the cap if
    this process's loop lagged meanwhile (a GC pause in a long test session, a loaded
    machine): the extension that lag earns is the design, and it is counted."""
    return TIMEOUT_S + MARGIN_S if extensions(link) == 0 else CAP_S + MARGIN_S


@pytest.mark.parametrize("pipelined", [False, True], ids=["get", "pipeline"])
async def test_a_reply_that_waits_behind_a_busy_loop_is_no_failure(
    own_valkey: OwnValkey, pipelined: bool
) -> None:
    link = _link(own_valkey.url, failures=1)  # one failure would open the breaker
    assert link.client is not None
    loop = asyncio.get_running_loop()

    def answer_while_busy() -> None:
        os.kill(own_valkey.pid, signal.SIGCONT)  # Valkey answers now, well in time...
        time.sleep(0.2)  # ...while this worker is busy for 4 timeouts (a burst)

    try:
        await link.client.set("k", b"v")
        await link.client.set("k2", b"w")
        assert await link.get("l2", "warm-up") is None  # connected
        # the command waits in Valkey's socket until 20 ms, so the reply is not read
        # before the loop blocks: the call is waiting for it, as in a burst
        os.kill(own_valkey.pid, signal.SIGSTOP)
        loop.call_later(0.02, answer_while_busy)
        start = time.perf_counter()
        if pipelined:
            got = await link.get_many("l2", ["k", "k2"])
            assert got == [b"v", b"w"]
        else:
            assert await link.get("l2", "k") == b"v"
        elapsed = time.perf_counter() - start
        assert elapsed >= 0.2
        assert errors(link) == 0
        assert state(link) == "closed"
        assert extensions(link) >= 1  # the timer fired ~170 ms late: extended, counted
    finally:
        await link.aclose()


async def test_a_stalled_valkey_is_cut_at_the_timeout_and_opens_the_breaker(
    own_valkey: OwnValkey,
) -> None:
    link = _link(own_valkey.url, failures=2)
    try:
        assert await link.get("l2", "warm-up") is None  # a pooled connection, ready
        with stopped(own_valkey.pid):
            for _ in range(2):
                start = time.perf_counter()
                assert await link.get("l2", "k") is SKIPPED
                elapsed = time.perf_counter() - start
                assert TIMEOUT_S <= elapsed < cut_by(link), (elapsed, extensions(link))
            assert errors(link) == 2
            assert state(link) == "open"
            # open: requests go on without Redis, at once
            start = time.perf_counter()
            assert await link.get("l2", "k") is SKIPPED
            assert time.perf_counter() - start < TIMEOUT_S
            assert total(link.metrics.redis_skipped) == 1
    finally:
        await link.aclose()


async def test_waiting_for_a_pooled_connection_is_bounded_by_the_same_timeout(
    own_valkey: OwnValkey,
) -> None:
    # more calls than the pool has connections: the last ones wait for one, and that
    # wait is part of the call (the pool's own timeout is the 1 s last resort). Pipelined
    # reads, each a call of its own (single GETs of one loop turn would share one MGET)
    link = _link(own_valkey.url, failures=1000)
    try:
        assert await link.get("l2", "warm-up") is None
        with stopped(own_valkey.pid):
            start = time.perf_counter()
            reads = [link.get_many("l2", [f"k{i}", f"j{i}"]) for i in range(40)]
            got = await asyncio.gather(*reads)
            elapsed = time.perf_counter() - start
        assert got == [SKIPPED] * 40
        assert errors(link) == 40
        assert elapsed < cut_by(link), (elapsed, extensions(link))
    finally:
        await link.aclose()


async def test_a_server_that_never_answers_is_cut_at_the_timeout() -> None:
    # accepts connections (the kernel's backlog) and never reads: the handshake stalls
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        port = server.getsockname()[1]
        link = _link(f"redis://127.0.0.1:{port}/0", failures=5)
        try:
            start = time.perf_counter()
            assert await link.get("l2", "k") is SKIPPED
            elapsed = time.perf_counter() - start
            assert TIMEOUT_S <= elapsed < cut_by(link), (elapsed, extensions(link))
            assert errors(link) == 1
        finally:
            await link.aclose()


async def test_a_call_whose_loop_lags_forever_is_cut_at_the_cap(own_valkey: OwnValkey) -> None:
    link = _link(own_valkey.url, failures=5)
    running = True

    def lag() -> None:  # every turn of the loop takes 100 ms, 2 x the timeout
        time.sleep(0.1)
        if running:
            loop.call_soon(lag)

    loop = asyncio.get_running_loop()
    try:
        assert await link.get("l2", "warm-up") is None
        with stopped(own_valkey.pid):
            loop.call_soon(lag)
            try:
                start = time.perf_counter()
                assert await link.get("l2", "k") is SKIPPED
                elapsed = time.perf_counter() - start
            finally:
                running = False
        # each late timer extended the call, until the cap; then it failed, counted
        assert CAP_S <= elapsed < CAP_S + 1.5, elapsed  # not at the first late timer
        assert link.cap_s == CAP_S
        assert extensions(link) >= 4
        assert errors(link) == 1
    finally:
        await link.aclose()
