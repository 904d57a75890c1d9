"""Duet windows: counterbalanced slot order, and figures read from a recorded k6 summary."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ci.experiments.gate.checkout import SideCheckout
from ci.experiments.gate.duo import Duo, DuoSpec, ServiceSpec, duo_stack
from ci.experiments.gate.k6_window import DuetLoad
from ci.experiments.gate.measuring import duet_runner
from ci.experiments.gate.sequential import Measured, measure_windows
from ci.experiments.gate.windows import DuetRunner, DuetTarget, abba_slots, duet_design
from ci.results.duet import DuetRevision, Side
from ci.settings import repo_sla
from ci.settings.gate import GateDesign, GateMetric, GateRule

REPO = Path(__file__).resolve().parents[4]


def test_abba_blocks_balance_the_slots() -> None:
    slots = abba_slots(50, random.Random(1))
    assert len(slots) == 200
    for b in range(50):
        block = slots[4 * b : 4 * b + 4]
        assert block[0] == block[3] != block[1] == block[2]
    firsts = [slots[4 * b] for b in range(50)]
    assert 10 < firsts.count("base") < 40  # shuffled, not always the same way round
    assert abba_slots(50, random.Random(1)) == slots  # seeded


def test_the_design_records_the_burst_gap_and_the_database_round_trip() -> None:
    design = duet_design(GateDesign(burst_gap_s=3.0, db_rtt_ms=4.0), 5)
    assert (design.burst_gap_s, design.db_rtt_ms) == (3.0, 4.0)
    loopback = duet_design(GateDesign(burst_gap_s=0.0, db_rtt_ms=0.0), 5)
    assert (loopback.burst_gap_s, loopback.db_rtt_ms) == (0.0, 0.0)


def test_a_sides_relay_cpu_is_read_apart_from_its_service(tmp_path: Path) -> None:
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    with (
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as service,
        subprocess.Popen([sys.executable, "-c", spin + "time.sleep(60)"]) as relay,
    ):
        try:
            deadline = time.monotonic() + 30
            while sum(psutil.Process(relay.pid).cpu_times()[:2]) < 0.3:
                assert time.monotonic() < deadline, "the spinning process never spun"
                time.sleep(0.05)
            targets: dict[Side, DuetTarget] = {
                "base": DuetTarget("base", "http://127.0.0.1:1", service.pid, relay_pid=relay.pid),
                "candidate": DuetTarget("candidate", "http://127.0.0.1:2", service.pid),
            }
            load = DuetLoad(1.0, 1.0, 0.0, 0.0, tmp_path / "queries.txt", {})
            cpu = DuetRunner(targets, load, tmp_path, nonce="t", k6=Path("k6"))._read()
        finally:
            service.kill()
            relay.kill()
    assert cpu["base"].relay_s is not None
    assert cpu["base"].relay_s >= 0.3
    assert cpu["base"].service_s < 0.3  # the relay's CPU is not the service's
    assert cpu["candidate"].relay_s is None


# -- on the real stack ----------------------------------------------------------------------

LEAK_APP = '''

_LEAKED: list[bytearray] = []
_create_app = create_app


def create_app(settings: Settings | None = None) -> Starlette:  # type: ignore[no-redef]
    """The service, keeping LEAK_BYTES of every HTTP request forever (a test's leak)."""
    inner = _create_app(settings)

    async def leaking(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            _LEAKED.append(bytearray(b"x" * LEAK_BYTES))
        await inner(scope, receive, send)

    return leaking  # type: ignore[return-value]
'''


STALL_APP = '''

_seen = [0]
_create_app = create_app


def create_app(settings: Settings | None = None) -> Starlette:  # type: ignore[no-redef]
    """The service, stalling every STALL_EVERY-th search by STALL_S (a test's tail)."""
    import asyncio

    inner = _create_app(settings)

    async def stalling(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/v1/search":
            _seen[0] += 1
            if _seen[0] % STALL_EVERY == 0:
                await asyncio.sleep(STALL_S)
        await inner(scope, receive, send)

    return stalling  # type: ignore[return-value]
'''


def _wrapped_checkout(root: Path, settings: str, wrapper: str) -> SideCheckout:
    """This checkout's service, copied to ``root``, its app wrapped by ``wrapper``."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "service", root / "service", ignore=skip)
    app = root / "service" / "http" / "app.py"
    app.write_text(app.read_text() + f"\n{settings}\n" + wrapper)
    return SideCheckout("candidate", "HEAD", _head(), root)


def _patched_checkout(root: Path, patch: str) -> SideCheckout:
    """This checkout's service, copied to ``root``, with the zoo's ``patch`` applied."""
    shutil.copytree(
        REPO / "service", root / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(["git", "apply", str(REPO / "zoo" / patch)], cwd=root, check=True)
    return SideCheckout("candidate", "HEAD", _head(), root)


def _head() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _runner(duo: Duo, out: Path, *, rate: float, window_s: float) -> DuetRunner:
    load = DuetLoad(
        rate=rate,
        window_s=window_s,
        unique_fraction=0.3,
        write_fraction=0.02,
        query_log=duo.corpus.query_log,
        sla_env=repo_sla().k6_env(),
        stream_fraction=0.03,
        stream_k=200,
        burst_vus=20,
        burst_iterations=2,
    )
    return duet_runner(duo, load, out, nonce="t")


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_side_whose_queries_cost_more_shows_more_postgres_cpu(tmp_path: Path) -> None:
    python = Path(sys.executable)
    head = _head()
    services = [
        ServiceSpec("base", SideCheckout("base", "HEAD", head, REPO), python),
        # no index: every search that misses the caches scans the table in PostgreSQL
        ServiceSpec(
            "candidate",
            SideCheckout("candidate", "HEAD", head, REPO),
            python,
            {"SEARCH_INDEX_MODE": "exact"},
        ),
    ]
    spec = DuoSpec(docs=5000, corpus_seed=7, embedder="hash", workers=1)
    with duo_stack(services, spec, tmp_path / "stack", random.Random(2)) as duo:
        runner = _runner(duo, tmp_path / "windows", rate=60.0, window_s=3.0)
        windows = [
            runner.window(i, 0, i < 2, slot)
            for i, slot in enumerate(abba_slots(1, random.Random(3)))
        ]
        runner.settle(1)  # an unmeasured run of the same load, as after a restart
    settled = json.loads((tmp_path / "windows" / "settle-01.summary.json").read_text())
    for slot in "ab":
        assert settled["metrics"][f"search_duet_{slot}_searches"]["count"] > 0
    measured = [w for w in windows if not w.warmup]
    for w in measured:
        base, cand = w.base, w.candidate
        assert base.postgres_cpu_s is not None
        assert cand.postgres_cpu_s is not None
        assert base.valkey_cpu_s is not None
        assert cand.valkey_cpu_s is not None
        assert base.valkey_cpu_s > 0
        # each side's Valkey counts its commands: the same cache work on both sides
        assert base.valkey_calls_per_request is not None
        assert cand.valkey_calls_per_request is not None
        assert base.valkey_calls_per_request > 0.5
        assert abs(cand.valkey_calls_per_request / base.valkey_calls_per_request - 1) < 0.2
        # the exact scan's work lands in PostgreSQL, and in the side's whole CPU
        assert cand.postgres_cpu_s / cand.requests > 1.5 * base.postgres_cpu_s / base.requests
        assert (cand.cpu_ms_per_request or 0) > (base.cpu_ms_per_request or 0)
        for s in (base, cand):
            assert s.slow is not None
            assert s.rss_start_mb is not None
            assert s.rss_peak_mb is not None
            assert s.rss_peak_mb >= s.rss_start_mb > 20
            assert s.ttfe_ms is not None
            assert s.stream_ms is not None
            assert s.stream_ms.p50 >= s.ttfe_ms.p50
            assert s.burst_ms is not None
            assert s.burst_ms.samples == 40
    print(
        "PostgreSQL CPU ms/request, base vs candidate:",
        [
            (
                round(1000 * (w.base.postgres_cpu_s or 0) / w.base.requests, 3),
                round(1000 * (w.candidate.postgres_cpu_s or 0) / w.candidate.requests, 3),
            )
            for w in measured
        ],
    )


def _against_head(tmp_path: Path, candidate: SideCheckout, rule: GateRule) -> Measured:
    """``candidate`` against this checkout under the windows of a small gate (2,000 docs,
    2-s windows at 60 iterations/s, four warm-up windows, one look at 12), judged by ``rule``."""
    python = Path(sys.executable)
    services = [
        ServiceSpec("base", SideCheckout("base", "HEAD", _head(), REPO), python),
        ServiceSpec("candidate", candidate, python),
    ]
    spec = DuoSpec(docs=2000, corpus_seed=7, embedder="hash", workers=1)
    gate = GateDesign(
        rate=60.0, window_s=2.0, docs=2000, embedder="hash", warmup_windows=4, burst_gap_s=0.0
    )
    with duo_stack(services, spec, tmp_path / "stack", random.Random(4)) as duo:
        runner = _runner(duo, tmp_path / "windows", rate=gate.rate, window_s=gate.window_s)
        revision = DuetRevision("HEAD", _head())
        return measure_windows(
            runner, rule, gate, duet_design(gate, 5), revision, revision,
            tmp_path / "windows.json", deadline=time.monotonic() + 300,
        )  # fmt: skip


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(500)
def test_a_leaking_service_fails_on_memory(tmp_path: Path) -> None:
    leaky = _wrapped_checkout(tmp_path / "leaky", "LEAK_BYTES = 5000", LEAK_APP)
    rule = GateRule(
        looks=(12,), metrics=(GateMetric("rss_kb_per_1k_requests", "lower", 2000.0, "absolute"),)
    )
    measured = _against_head(tmp_path, leaky, rule)
    growth = [
        (w.base.rss_kb_per_1k_requests, w.candidate.rss_kb_per_1k_requests)
        for w in measured.run.measured
    ]
    print("RSS growth KB per 1k requests, base vs candidate:", growth)
    assert measured.judgement.decision == "fail", growth
    assert measured.judgement.reasons == ("rss_kb_per_1k_requests",)
    # both sides grow while their caches fill; the pairs differ by the leak (4,883 KB)
    (rss,) = measured.judgement.primary_report
    assert 3000 < rss.change < 7000


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(500)
def test_two_percent_of_searches_stalling_50_ms_fails_on_the_tail(tmp_path: Path) -> None:
    stall = _wrapped_checkout(tmp_path / "stall", "STALL_EVERY = 50\nSTALL_S = 0.05", STALL_APP)
    # 2-s windows hold ~120 searches per side, ~2 of them stalled: no prior (tail_prior is
    # sized for the gate's 600-search windows)
    rule = GateRule(
        looks=(12,), metrics=(GateMetric("slow_lead", "lower", 0.15, "absolute"),), tail_prior=0.0
    )
    measured = _against_head(tmp_path, stall, rule)
    shares = [(w.base.slow_share, w.candidate.slow_share) for w in measured.run.measured]
    print("slow shares, base vs candidate:", shares)
    assert measured.judgement.decision == "fail", shares
    assert measured.judgement.reasons == ("slow_lead",)


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(500)
def test_an_extra_valkey_round_trip_per_search_fails_on_valkey_commands(tmp_path: Path) -> None:
    ping = _patched_checkout(tmp_path / "ping", "redis-round-trip.patch")
    rule = GateRule(looks=(12,), metrics=(GateMetric("valkey_calls_per_request", "lower", 0.1),))
    measured = _against_head(tmp_path, ping, rule)
    calls = [
        (w.base.valkey_calls_per_request, w.candidate.valkey_calls_per_request)
        for w in measured.run.measured
    ]
    print("Valkey commands per request, base vs candidate:", calls)
    assert measured.judgement.decision == "fail", calls
    assert measured.judgement.reasons == ("valkey_calls_per_request",)
    # a PING per search that reaches the cache: most requests are such searches
    for base, cand in calls:
        assert base is not None
        assert cand is not None
        assert cand - base > 0.5
