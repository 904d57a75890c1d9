"""A database host of the run's own: a network namespace reached over a veth pair whose two
ends each delay what they send by half a round trip (netem), so that every query pays the
round trip of a database on another machine (``[gate] db_rtt_ms``).

The run creates the namespace and deletes it when it ends, however it ends; deleting it
removes the veth pair. Names carry a random token, so that runs side by side never meet,
and the /30 between the two ends is drawn from ``10.231.0.0/16`` among those that no
address of this host lies in. Load tests target loopback or such a namespace only.

===========  ==============================================================================
step         command (root, iproute2)
===========  ==============================================================================
namespace    ``ip netns add perfci-<token>``, its ``lo`` up
link         ``ip link add pci<token>h type veth peer name pci<token>n netns perfci-<token>``
addresses    the host end gets the /30's first address, the namespace end its second
delay        ``tc qdisc add dev <end> root netem delay <rtt / 2>`` on each end
===========  ==============================================================================
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import random
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ci.errors import StackError
from ci.settings.env import DB_HOST_NETWORK, DbHost
from ci.stack.process import is_root

COMMAND_TIMEOUT_S = 10.0
GONE_TIMEOUT_S = 5.0  # the kernel removes a deleted namespace's devices asynchronously
SUBNET_DRAWS = 64
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class DbLink:
    """A namespace of the run's own and the veth pair to it."""

    host_end: str  # the veth end on this host (an interface name, at most 15 characters)
    peer_end: str  # the veth end inside the namespace
    db_host: DbHost  # the namespace, the address inside it and the host end's address
    rtt_ms: float  # the round trip the two netem delays add up to (0: none)

    @property
    def namespace(self) -> str:
        return self.db_host.namespace


def _unsupported(rtt_ms: float, why: str) -> StackError:
    return StackError(
        f"db_rtt_ms = {rtt_ms!r} needs root and iproute2 with netem ({why}): set db_rtt_ms = 0"
    )


def _tools(rtt_ms: float) -> tuple[str, str]:
    """``ip`` and ``tc``, as root; a StackError naming what is missing."""
    if not is_root():
        raise _unsupported(rtt_ms, "this process is not root")
    ip, tc = shutil.which("ip"), shutil.which("tc")
    if ip is None or tc is None:
        missing = " and ".join(n for n, p in (("ip", ip), ("tc", tc)) if p is None)
        raise _unsupported(rtt_ms, f"no {missing} on PATH: install iproute2, add /usr/sbin")
    return ip, tc


def _run(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"`{' '.join(cmd)}` failed: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise StackError(f"`{' '.join(cmd)}` exited {proc.returncode}: {detail}")
    return proc.stdout


def netns_exec(namespace: str, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run inside ``namespace`` (the rest of the system as it is: files, users, PIDs)."""
    ip = shutil.which("ip")
    if ip is None:
        raise StackError(f"no ip on PATH, so nothing can run in network namespace {namespace}")
    return [ip, "netns", "exec", namespace, *cmd]


def host_networks(ip: str = "ip") -> list[Network]:
    """The networks of every address of this host (``ip -o addr``)."""
    out: list[Network] = []
    for line in _run([ip, "-o", "addr", "show"]).splitlines():
        fields = line.split()
        for key, value in itertools.pairwise(fields):
            if key in ("inet", "inet6"):
                out.append(ipaddress.ip_interface(value).network)
    return out


def free_subnet(used: Sequence[Network], rng: random.Random) -> ipaddress.IPv4Network:
    """A /30 of ``10.231.0.0/16`` that none of ``used`` overlaps, drawn at random."""
    count = DB_HOST_NETWORK.num_addresses // 4
    first = int(DB_HOST_NETWORK.network_address)
    for _ in range(SUBNET_DRAWS):
        subnet = ipaddress.IPv4Network((first + 4 * rng.randrange(count), 30))
        if not any(subnet.overlaps(u) for u in used if u.version == 4):
            return subnet
    raise StackError(
        f"no free /30 in {DB_HOST_NETWORK} after {SUBNET_DRAWS} draws: this host's addresses "
        f"(`ip -o addr`) cover it"
    )


def _netem(tc: list[str], dev: str, rtt_ms: float) -> None:
    """Delay what ``dev`` sends by half of ``rtt_ms``; a clear error if the kernel has no netem."""
    delay = ["delay", f"{round(rtt_ms * 500)}us"]
    # netem holds every packet for the delay; beyond its queue (default 1,000 packets) it
    # drops, which at long round trips a burst's traffic could reach
    cmd = [*tc, "qdisc", "add", "dev", dev, "root", "netem", *delay, "limit", "10000"]
    try:
        _run(cmd)
    except StackError as exc:
        raise _unsupported(rtt_ms, f"{exc}; the kernel needs sch_netem") from exc


def check_support(rtt_ms: float) -> None:
    """Root, ``ip`` and ``tc``, and a kernel with netem (tried on the loopback device of a
    namespace made for the purpose, deleted again): up front, before a run's long set-up."""
    ip, tc = _tools(rtt_ms)
    probe = f"perfci-probe-{secrets.token_hex(3)}"
    try:
        _run([ip, "netns", "add", probe])
    except StackError as exc:
        raise _unsupported(rtt_ms, str(exc)) from exc
    try:
        _netem([tc, "-n", probe], "lo", rtt_ms)
    finally:
        _delete_namespace(ip, probe)


def open_link(rtt_ms: float) -> DbLink:
    """A new namespace and a veth pair to it, each end delaying by ``rtt_ms / 2`` (0: no
    delay); everything is removed again if a step fails."""
    assert rtt_ms >= 0, f"rtt_ms = {rtt_ms}"
    ip, tc = _tools(rtt_ms)
    token = secrets.token_hex(3)
    subnet = free_subnet(host_networks(ip), random.SystemRandom())
    host_address, address = (str(a) for a in subnet.hosts())
    namespace = f"perfci-{token}"
    link = DbLink(
        host_end=f"pci{token}h",
        peer_end=f"pci{token}n",
        db_host=DbHost(namespace, address, host_address),
        rtt_ms=rtt_ms,
    )
    try:
        _run([ip, "netns", "add", namespace])
    except StackError as exc:
        raise _unsupported(rtt_ms, str(exc)) from exc
    try:
        in_ns = [ip, "-n", namespace]
        veth = ["type", "veth", "peer", "name", link.peer_end, "netns", namespace]
        _run([ip, "link", "add", link.host_end, *veth])
        _run([ip, "addr", "add", f"{host_address}/30", "dev", link.host_end])
        _run([ip, "link", "set", link.host_end, "up"])
        _run([*in_ns, "addr", "add", f"{address}/30", "dev", link.peer_end])
        _run([*in_ns, "link", "set", link.peer_end, "up"])
        _run([*in_ns, "link", "set", "lo", "up"])
        if rtt_ms > 0:
            _netem([tc], link.host_end, rtt_ms)
            _netem([tc, "-n", namespace], link.peer_end, rtt_ms)
    except BaseException:
        close_link(link)
        raise
    return link


def _delete_namespace(ip: str, namespace: str) -> None:
    with contextlib.suppress(StackError):  # gone already
        _run([ip, "netns", "delete", namespace])


def _device_exists(ip: str, dev: str) -> bool:
    proc = subprocess.run(
        [ip, "link", "show", "dev", dev],
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return proc.returncode == 0


def close_link(link: DbLink) -> None:
    """Delete the namespace, then wait for its veth pair to go (the kernel removes it once
    the namespace's last process has exited); stop PostgreSQL in it first."""
    ip = shutil.which("ip") or "ip"
    _delete_namespace(ip, link.namespace)
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while _device_exists(ip, link.host_end):
        if time.monotonic() > deadline:
            with contextlib.suppress(StackError):
                _run([ip, "link", "delete", link.host_end])  # removes both ends
            if _device_exists(ip, link.host_end):
                raise StackError(
                    f"veth {link.host_end} of namespace {link.namespace} is still there "
                    f"{GONE_TIMEOUT_S:g} s after the namespace was deleted"
                )
            return
        time.sleep(0.05)


@contextlib.contextmanager
def db_link(rtt_ms: float) -> Iterator[DbLink | None]:
    """A link with ``rtt_ms`` round trip to a namespace of the run's own for the block,
    deleted after it; None for 0 (PostgreSQL stays on loopback)."""
    if rtt_ms <= 0:
        yield None
        return
    link = open_link(rtt_ms)
    try:
        yield link
    finally:
        close_link(link)
