"""ci.sample: the process sampler counts server-side connections; a dead database is no crash."""

from __future__ import annotations

import os
import socket
import time

import psutil

from ci import stack
from ci.measure.sample import DatabaseSampler, ProcessSampler


def test_process_sampler_counts_established_connections_on_the_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            sampler = ProcessSampler(os.getpid(), port, interval_s=0.05)
            sampler.start()
            time.sleep(0.2)
            resources = sampler.stop()
        finally:
            for sock in clients + accepted:
                sock.close()
    # only the accepted ends listen on `port` locally; the client ends do not count
    assert sampler.peak_connections == 3
    assert resources.samples
    # the sampler follows the process and its children: earlier tests of a full run may have
    # left helper children of pytest alive, and those count too; nothing else may appear
    family = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
    pids = {s.pid for s in resources.samples}
    assert os.getpid() in pids
    assert pids <= family | {s.pid for s in resources.samples if psutil.pid_exists(s.pid) is False}
    assert resources.peak_rss_mb is not None
    assert resources.peak_rss_mb == max(s.rss_mb for s in resources.samples)
    assert all(s.rss_mb > 1 for s in resources.samples)


def test_database_sampler_without_a_database_reports_instead_of_raising() -> None:
    port = stack.free_port()
    sampler = DatabaseSampler(f"postgresql://postgres@127.0.0.1:{port}/postgres", interval_s=0.05)
    sampler.start()
    assert sampler.stop() is None
    assert sampler.error is not None
