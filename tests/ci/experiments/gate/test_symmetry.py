"""Symmetric sides: what tells the two services apart, besides their code, follows the seed.

The unit tests deal without a stack. Two stack tests (stack, slow) follow: the small gate of
``test_runner.py`` run twice, A/A with the revisions behind the labels swapped and the same
seed, its deal read back from each run's ``windows.json``; and one stack of two services
whose environments, command lines and folders are compared string by string.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import psutil
import pytest

from ci.errors import ConfigError
from ci.experiments.gate.checkout import side_checkouts
from ci.experiments.gate.duo import DuoSpec, ServiceSpec, database_name, duo_stack
from ci.experiments.gate.runner import GateRequest, run_gate
from ci.experiments.gate.symmetry import DEALT, HASH_SEED, deal_sides, draw_ports, pin
from ci.judge.gate_folder import GateFolder
from ci.judge.gate_verdict import Revision
from ci.results.duet import SIDES, SidePlacement, load_duet
from ci.settings import PerfConfig, load_perf_config
from ci.settings.gate import GateConfig
from tests.ci.experiments.gate.test_runner import REPO, SMALL

SEEDS = range(200)
PORTS = (41001, 41002)  # as drawn: sorted
VALKEY_PORTS = (42001, 42002)


def _placements(seed: int, labels: tuple[str, ...] = SIDES) -> dict[str, SidePlacement]:
    deal = deal_sides(labels, seed)
    return {label: deal.place(label, PORTS, VALKEY_PORTS) for label in labels}


def test_the_deal_is_a_function_of_the_seed_alone() -> None:
    for seed in SEEDS:
        assert deal_sides(SIDES, seed) == deal_sides(SIDES, seed)
        # the labels' names play no part: the first side gets what the first side got,
        # whatever it is called (the revision behind a label is never asked)
        renamed = _placements(seed, ("x", "y"))
        assert list(renamed.values()) == list(_placements(seed).values())


def test_every_property_is_dealt_to_each_side_about_half_the_time() -> None:
    got: Counter[tuple[str, object]] = Counter()
    for seed in SEEDS:
        base = _placements(seed)["base"]
        got.update(
            [
                ("slot", base.slot),
                ("start", base.start),
                ("port", base.port),
                ("valkey", base.valkey_port),
            ]
        )
    for key, values in {
        "slot": ("side1", "side2"),
        "start": (0, 1),
        "port": PORTS,
        "valkey": VALKEY_PORTS,
    }.items():
        for value in values:
            assert 70 <= got[(key, value)] <= 130, (key, value, got)


def test_the_properties_are_dealt_independently() -> None:
    # one shuffle for all would tie them: the side named side1 would always start first
    bases = [_placements(seed)["base"] for seed in SEEDS]
    pairs = Counter((p.slot, p.start, p.port, p.valkey_port) for p in bases)
    assert len(pairs) == 16, pairs
    assert set(DEALT) == {"slot", "start", "port", "valkey", "cpus"}


def test_different_seeds_deal_differently() -> None:
    distinct = {msgspec.structs.astuple(_placements(seed)["base"]) for seed in range(8)}
    assert len(distinct) > 1
    orders = {deal_sides(SIDES, seed).start_order for seed in range(8)}
    assert orders == {("base", "candidate"), ("candidate", "base")}


def test_both_sides_get_equally_long_names_and_the_same_hash_seed() -> None:
    for seed in SEEDS:
        base, cand = (_placements(seed)[s] for s in SIDES)
        assert {base.slot, cand.slot} == {"side1", "side2"}
        assert len(base.slot) == len(cand.slot)
        assert len(database_name(base.slot)) == len(database_name(cand.slot))
        assert base.hash_seed == cand.hash_seed == HASH_SEED == "0"
        assert base.start != cand.start
        assert base.cpus is None
        assert cand.cpus is None
    # any number of services gets names of one length
    three = deal_sides(("a", "b", "slowed"), 3)
    assert sorted(three.slot(label) for label in three.labels) == ["side1", "side2", "side3"]


def test_ports_are_drawn_distinct_free_and_of_one_length() -> None:
    ports = draw_ports(4)
    assert list(ports) == sorted(set(ports))
    assert len({len(str(p)) for p in ports}) == 1
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free: it binds


def test_cpus_are_dealt_in_disjoint_quarters_when_pinning() -> None:
    cpus = range(8)
    seen = set()
    for seed in range(16):
        deal = deal_sides(SIDES, seed, pin_cpus=True, cpus=cpus)
        base, cand = deal.cpus("base"), deal.cpus("candidate")
        assert base is not None
        assert cand is not None
        assert len(base) == len(cand) == 2
        assert not set(base) & set(cand)
        seen.add(base)
    assert seen == {(0, 1), (2, 3)}  # dealt, not given to the base by its label


def test_pinning_on_too_few_cpus_is_refused_naming_the_count() -> None:
    with pytest.raises(ConfigError, match=r"needs 4 or more CPUs .* this machine has 2"):
        deal_sides(SIDES, 1, pin_cpus=True, cpus=[0, 1])


def test_pin_sets_every_thread_of_a_process_and_its_children() -> None:
    usable = os.sched_getaffinity(0)
    if len(usable) < 2:
        pytest.skip("one CPU: pinning to it changes nothing to see")
    cpu = min(usable)
    script = (
        "import subprocess, sys, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            root = psutil.Process(proc.pid)
            family = [root, *root.children(recursive=True)]
            assert len(family) == 2
            threads = [t.id for p in family for t in p.threads()]
            assert len(threads) >= 3
            assert os.sched_getaffinity(threads[-1]) == usable
            pin(proc.pid, [cpu])
            assert all(os.sched_getaffinity(tid) == {cpu} for tid in threads)
        finally:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()


# -- the whole gate, twice ----------------------------------------------------------------


def _seed_dealing_against_the_labels() -> int:
    """A seed whose deal gives the base neither the first slot nor the first start."""
    for seed in SEEDS:
        deal = deal_sides(SIDES, seed)
        if deal.slot("base") == "side2" and deal.start_order[0] == "candidate":
            return seed
    raise AssertionError("no seed in range deals the base side2 and a second start")


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_recorded_deal_follows_the_seed_when_the_labels_are_swapped(tmp_path: Path) -> None:

    # two commits that differ only in a comment, as a pull request's would
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)

    def git(*args: str) -> str:
        identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
        return subprocess.run(
            ["git", "-C", str(clone), *identity, *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    first = git("rev-parse", "HEAD")
    with open(clone / "service" / "__init__.py", "a", encoding="utf-8") as fh:
        fh.write("# a comment\n")
    git("commit", "-q", "-am", "a comment")
    second = git("rev-parse", "HEAD")
    design = msgspec.structs.replace(SMALL.design, quality_queries=0)
    config = PerfConfig(sla=load_perf_config().sla, gate=GateConfig(SMALL.rule, design))
    seed = _seed_dealing_against_the_labels()
    placements = []
    for base, cand in ((first, second), (second, first)):
        out = tmp_path / f"gate-{base[:8]}"
        request = GateRequest(
            repo=clone, base=Revision(base, base), candidate=Revision(cand, cand), out_dir=out,
            config=config, machine_class="test", harness_source="base revision",
            harness_revision=first, seed=seed, venv_root=REPO / ".perfci" / "venvs",
            shapes=False,
        )  # fmt: skip
        verdict = run_gate(request, progress=print)
        assert verdict.order_seed == seed
        run = load_duet(GateFolder(out).windows)
        assert run.windows, verdict.judgement.reasons
        assert (run.base.commit, run.candidate.commit) == (base, cand)
        assert run.placement is not None
        placements.append(run.placement)
    deal = deal_sides(SIDES, seed)
    for placement in placements:
        b, c = placement["base"], placement["candidate"]
        # what the seed dealt, whichever revision stood behind the label
        assert (b.slot, b.start, c.slot, c.start) == ("side2", 1, "side1", 0)
        assert (b.port < c.port) == (deal.positions["port"]["base"] == 0)
        assert (b.valkey_port < c.valkey_port) == (deal.positions["valkey"]["base"] == 0)
        assert len(str(b.port)) == len(str(c.port))
        assert b.hash_seed == c.hash_seed == HASH_SEED
        assert b.cpus is None
        assert c.cpus is None


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_two_services_differ_in_no_string_length(tmp_path: Path) -> None:
    """Each environment variable, the command line and the working folder of the two
    services, and their Valkey servers' command lines, are equally long: no label reaches
    them, only what the seed dealt."""

    deal = deal_sides(SIDES, _seed_dealing_against_the_labels())
    slots = {side: deal.slot(side) for side in SIDES}
    python = Path(sys.executable)
    spec = DuoSpec(docs=300, corpus_seed=7, embedder="hash", workers=1)
    seen = {}
    with side_checkouts(REPO, "HEAD", "HEAD", tmp_path / "trees", slots) as trees:
        services = [ServiceSpec(side, trees[side], python) for side in SIDES]
        with duo_stack(services, spec, tmp_path / "stack", random.Random(0), deal=deal) as duo:
            for side in SIDES:
                svc = duo.services[side]
                proc = psutil.Process(svc.pid)
                valkey = psutil.Process(svc.valkey_pid)
                seen[side] = (proc.environ(), proc.cmdline(), proc.cwd(), valkey.cmdline())
    (env_b, cmd_b, cwd_b, vk_b), (env_c, cmd_c, cwd_c, vk_c) = seen["base"], seen["candidate"]
    assert {k: len(v) for k, v in env_b.items()} == {k: len(v) for k, v in env_c.items()}
    assert env_b["PYTHONHASHSEED"] == env_c["PYTHONHASHSEED"] == HASH_SEED
    assert env_b["DATABASE_URL"].endswith("/gate_side2")  # the base's slot, as dealt
    assert [len(a) for a in cmd_b] == [len(a) for a in cmd_c]
    assert (Path(cwd_b).name, Path(cwd_c).name) == ("side2", "side1")
    assert [len(a) for a in vk_b] == [len(a) for a in vk_c]
