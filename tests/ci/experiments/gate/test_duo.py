"""The one stack of the gate: a candidate that embeds with another model gets its own corpus."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ci.experiments.gate.checkout import SideCheckout
from ci.experiments.gate.duo import DuoSpec, ServiceSpec, duo_stack

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[4]


def test_a_candidate_with_another_model_is_served_its_own_corpus(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    python = Path(sys.executable)
    services = [
        ServiceSpec("base", SideCheckout("base", "HEAD", head, REPO), python),
        # the shipped file instead of the int8 kernels: another model id, other vectors
        ServiceSpec(
            "candidate",
            SideCheckout("candidate", "HEAD", head, REPO),
            python,
            {"SEARCH_MINILM_KERNELS": "shipped"},
        ),
    ]
    spec = DuoSpec(docs=120, corpus_seed=7, embedder="minilm", workers=1)
    messages: list[str] = []
    with duo_stack(services, spec, tmp_path / "stack", random.Random(1), messages.append) as duo:
        models = {}
        for label, side in duo.services.items():
            with httpx.Client(base_url=side.url, timeout=30) as client:
                resp = client.get("/v1/search", params={"q": "telescope lenses", "k": 3})
                assert resp.status_code == 200, (label, resp.text)
                assert len(resp.json()["results"]) == 3
                models[label] = client.get("/v1/stats").json()["embedder"]["model_id"]
    assert models["base"] != models["candidate"]
    reloaded = [m for m in messages if m.startswith("the candidate embeds with")]
    assert len(reloaded) == 1, messages
    assert models["candidate"] in reloaded[0]
