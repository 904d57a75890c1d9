"""``perfci run --runners N`` with real k6 against the real service: the split run does the
same work as one runner, and its merged percentiles agree; also with each runner in a network
namespace of its own, against the service's address in a third."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ci.cli import main
from ci.errors import RunError
from ci.measure import launch, merge, segments
from ci.measure.k6 import K6Invocation, find_k6
from ci.measure.launch import RunnerHost
from ci.measure.profiles import PROFILES
from ci.measure.run import RunRequest, execute
from ci.results import RunResults, load_results
from ci.settings import StackSettings
from tests.harness import RunningService

SCENARIO = "arrival_rate"  # open model: constant, then ramping arrival rate
# The test profile at its full rate (40 arrivals/s; the profile itself scales it to 8): about
# 190 iterations in 5 s, enough samples for a p95 that shared cores do not swing by 2x.
PROFILE = dataclasses.replace(PROFILES["test"], vu_scale=1.0)


@pytest.fixture
def full_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROFILES, "test", PROFILE)


def _run(service: RunningService, out: Path, runners: int) -> tuple[RunResults, Path]:
    code = main([
        "run", "--profile", "test", "--scenario", SCENARIO, "--target", service.url,
        "--runners", str(runners), "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    (run_dir,) = out.iterdir()
    return load_results(run_dir / "results.json"), run_dir


def _compare(one: RunResults, two: RunResults, one_dir: Path, two_dir: Path) -> str:
    files = sorted(two_dir.glob(f"{SCENARIO}.runner-*.raw.csv.gz"))
    assert [f.name for f in files] == [f"{SCENARIO}.runner-{i}.raw.csv.gz" for i in (1, 2)]
    single = _iterations([one_dir / f"{SCENARIO}.raw.csv.gz"])
    split = _iterations(files)
    a, b = one.scenario(SCENARIO), two.scenario(SCENARIO)
    assert abs(single - split) <= 2, (single, split)
    assert a.dropped_iterations == b.dropped_iterations == 0
    assert sum(p.rps for p in b.timeseries) == b.requests
    # the same service at the same offered rate: the merged percentiles agree within what
    # two runs on 2 shared cores differ by anyway (p95 of ~190 samples: 6.5-15 ms, measured)
    for p, floor_ms, share in (("p50", 5.0, 0.5), ("p95", 10.0, 0.75)):
        x, y = getattr(a.latency_ms, p), getattr(b.latency_ms, p)
        assert abs(x - y) <= max(floor_ms, share * x), (p, x, y)
    assert {t.expression for t in b.thresholds} == {t.expression for t in a.thresholds}
    assert all(t.ok for t in b.thresholds), b.thresholds
    return (
        f"iterations {single:.0f} vs {split:.0f}; p50 {a.latency_ms.p50} vs "
        f"{b.latency_ms.p50} ms; p95 {a.latency_ms.p95} vs {b.latency_ms.p95} ms"
    )


def _iterations(files: list[Path]) -> float:
    return merge.merge_files(files).aggregate("iterations", "count")


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("full_rate")
def test_two_runners_do_the_work_of_one(search_service: RunningService, tmp_path: Path) -> None:
    one, one_dir = _run(search_service, tmp_path / "one", 1)
    two, two_dir = _run(search_service, tmp_path / "two", 2)
    print("one runner vs two:", _compare(one, two, one_dir, two_dir))


# -- network namespaces --------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _netns_usable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"perfci-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"`ip netns add` failed (needs root/CAP_SYS_ADMIN): {exc}"
    _ip("netns", "del", probe)
    return None


def _in_netns(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` with this thread in network namespace ``name``, then back."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{name}") as there, open("/proc/thread-self/ns/net") as home:
        assert libc.setns(there.fileno(), CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        try:
            return fn()
        finally:
            assert libc.setns(home.fileno(), CLONE_NEWNET) == 0


@contextlib.contextmanager
def _three_namespaces() -> Iterator[tuple[list[str], dict[str, str]]]:
    """Namespaces for runner 1, runner 2 and the service, on one bridge (in a fourth, the
    hub) that this namespace joins too; every name and address made here, all deleted after."""
    tag = f"{os.getpid() % 100000}"
    hub, names = f"pci-hub-{tag}", [f"pci-r1-{tag}", f"pci-r2-{tag}", f"pci-svc-{tag}"]
    addrs = {names[0]: "10.231.7.1", names[1]: "10.231.7.2", names[2]: "10.231.7.3"}
    made: list[str] = []
    try:
        for ns in (hub, *names):
            _ip("netns", "add", ns)
            made.append(ns)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        ends: list[tuple[str | None, str]] = [*addrs.items(), (None, "10.231.7.254")]
        for k, (place, addr) in enumerate(ends):  # None: this namespace joins the bridge too
            inner, outer = f"pci{tag}i{k}", f"pci{tag}o{k}"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", outer, "netns", hub)
            _ip("-n", hub, "link", "set", outer, "master", "br0", "up")
            where = ("-n", place) if place else ()
            if place:
                _ip("link", "set", inner, "netns", place)
                _ip(*where, "link", "set", "lo", "up")
            _ip(*where, "addr", "add", f"{addr}/24", "dev", inner)
            _ip(*where, "link", "set", inner, "up")
        yield names, addrs
    finally:
        for ns in reversed(made):  # a namespace takes its veth ends along
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        # this namespace's end, if the hub did not take it along
        subprocess.run(["ip", "link", "del", f"pci{tag}i3"], check=False, capture_output=True)


@contextlib.contextmanager
def _forward(ns: str, addr: str, to_port: int) -> Iterator[int]:
    """A TCP listener at ``addr`` in namespace ``ns`` whose connections go to the service on
    this namespace's 127.0.0.1:``to_port``: the service's address in the third namespace.
    Yields its port; every socket is closed after."""
    server = _in_netns(ns, lambda: socket.create_server((addr, 0)))
    sockets: list[socket.socket] = [server]
    threads: list[threading.Thread] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                upstream = socket.create_connection(("127.0.0.1", to_port))
                sockets.extend((client, upstream))
                for a, b in ((client, upstream), (upstream, client)):
                    threads.append(threading.Thread(target=pump, args=(a, b), daemon=True))
                    threads[-1].start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1]
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in (acceptor, *threads):
            thread.join(timeout=5)


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("full_rate")
def test_two_runners_in_their_own_namespaces(
    search_service: RunningService, tmp_path: Path
) -> None:
    reason = _netns_usable()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    one, one_dir = _run(search_service, tmp_path / "one", 1)
    port = int(search_service.url.rsplit(":", 1)[1])
    with _three_namespaces() as (names, addrs), _forward(names[2], addrs[names[2]], port) as fwd:
        hosts = tuple(RunnerHost(("ip", "netns", "exec", ns), addrs[ns]) for ns in names[:2])
        request = RunRequest(
            PROFILE, (SCENARIO,), tmp_path / "two", StackSettings(run_dir=tmp_path / "s"),
            target=f"http://{addrs[names[2]]}:{fwd}", runners=2, runner_hosts=hosts,
        )  # fmt: skip
        outcome = execute(request, lambda _message: None)
    compared = _compare(one, outcome.results, one_dir, outcome.run_dir)
    print("one runner vs two in namespaces:", compared)


# -- the launcher on its own (a local HTTP server, no stack) -------------------------------------

SCRIPT = """
import http from 'k6/http';
export const options = { scenarios: { open: {
  executor: 'constant-arrival-rate', rate: 40, timeUnit: '1s', duration: __ENV.DURATION,
  preAllocatedVUs: 4, maxVUs: 8 } } };
export default function () { http.get(__ENV.BASE); }
"""


@pytest.fixture
def tiny_server() -> Iterator[str]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _invocation(tmp_path: Path, base: str, duration: str) -> K6Invocation:
    script = tmp_path / "open.js"
    script.write_text(SCRIPT)
    return K6Invocation(
        script, {"BASE": base, "DURATION": duration}, tmp_path / "open.summary.json",
        tmp_path / "open.raw.csv.gz", tmp_path / "open.k6.log",
    )  # fmt: skip


@pytest.mark.timeout(60)
def test_paused_runners_resume_together_and_merge(tiny_server: str, tmp_path: Path) -> None:
    inv = _invocation(tmp_path, tiny_server, "2s")
    launched = launch.launch(inv, find_k6(), 2)
    assert launched.exit_codes == (0, 0)
    assert launched.start_skew_s < 1.0
    options = segments.inspect_options(find_k6(), inv.script, inv.env)
    summary, raw = launch.merge_runs(launched.files, options, launched.start_skew_s)
    merged = merge.merge_files(launched.files)
    per_runner = [r.iterations for r in merged.runners]
    assert min(per_runner) > 0  # each runner did its share
    assert abs(sum(per_runner) - 80) <= 2  # 40/s for 2 s, split between the two
    assert summary.requests == len(raw.durations) == sum(per_runner)
    assert summary.dropped_iterations == 0


@pytest.mark.timeout(60)
def test_a_crashed_runner_is_an_error_naming_it(tiny_server: str, tmp_path: Path) -> None:
    inv = _invocation(tmp_path, tiny_server, "20s")
    # runner 2 is killed 3 s into its 20 s: exit 124 from timeout(1)
    hosts = (launch.RunnerHost(), launch.RunnerHost(("timeout", "3")))
    with pytest.raises(RunError, match=r"runner 2 crashed \(exit 124\)"):
        launch.launch(inv, find_k6(), 2, hosts)


def test_a_runner_that_cannot_start_is_named(tiny_server: str, tmp_path: Path) -> None:
    inv = _invocation(tmp_path, tiny_server, "2s")
    hosts = (launch.RunnerHost(), launch.RunnerHost(("false",)))
    with pytest.raises(RunError, match="runner 2 exited 1 before it started"):
        launch.launch(inv, find_k6(), 2, hosts)
