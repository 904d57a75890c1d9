"""The one stack of the gate: each side's data layer is built by its own loader."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from ci.errors import StackError
from ci.experiments.gate import duo
from ci.experiments.gate.checkout import SideCheckout
from ci.experiments.gate.duo import DuoSpec, ServiceSpec, duo_stack
from ci.results.duet import Side
from ci.settings import StackSettings
from ci.stack import netns

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


@pytest.mark.stack
@pytest.mark.slow
def test_a_candidate_with_other_hnsw_parameters_gets_its_own_index_and_only_it(
    tmp_path: Path,
) -> None:
    python = Path(sys.executable)
    services = [
        ServiceSpec("base", _checkout("base"), python),
        ServiceSpec(
            "candidate",
            _checkout("candidate"),
            python,
            {"SEARCH_HNSW_M": "8", "SEARCH_HNSW_EF_CONSTRUCTION": "32"},
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
        # each side has its own Valkey server, and its service talks to it
        assert base.valkey_pid != cand.valkey_pid
        assert base.redis_url != cand.redis_url
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


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root, ip")
def test_the_database_hosts_namespace_goes_when_the_stack_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespaces: list[str] = []

    def no_postgres(settings: StackSettings) -> None:
        assert settings.db_host is not None  # PostgreSQL would start in the namespace
        namespaces.append(settings.db_host.namespace)
        raise StackError("PostgreSQL did not start")

    monkeypatch.setattr(netns, "_netem", lambda tc, dev, rtt_ms: None)  # any kernel
    monkeypatch.setattr(duo, "start_server_set", no_postgres)
    services = [ServiceSpec("base", _checkout("base"), Path(sys.executable))]
    spec = DuoSpec(docs=10, corpus_seed=7, embedder="hash", workers=1, db_rtt_ms=4.0)
    with (
        pytest.raises(StackError, match="did not start"),
        duo_stack(services, spec, tmp_path, random.Random(1)),
    ):
        pass
    (name,) = namespaces
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert name not in listed.stdout
