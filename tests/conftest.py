"""Session fixtures for every test: the stack of ``tests/harness.py`` (imported, so visible)."""

from __future__ import annotations

import os

import pytest

from tests.harness import (
    corpus,
    module_service_factory,
    own_valkey,
    search_service,
    servers,
    service_factory,
    session_service_starter,
)

__all__ = [
    "corpus",
    "module_service_factory",
    "own_valkey",
    "search_service",
    "servers",
    "service_factory",
    "session_service_starter",
]


def pytest_configure(config: pytest.Config) -> None:
    # PostgreSQL refuses to start as root; the stack handles it, but say where logs go.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
