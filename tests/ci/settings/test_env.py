"""The stack's settings: PostgreSQL on loopback, or on a database host of the stack's own."""

from __future__ import annotations

import pytest

from ci.errors import ConfigError
from ci.settings import StackSettings
from ci.settings.env import DbHost


def test_postgres_listens_on_loopback_unless_on_a_database_host_of_its_own() -> None:
    assert StackSettings().pg_host == "127.0.0.1"
    own = StackSettings(db_host=DbHost("perfci-0a1b2c", "10.231.7.2", "10.231.7.1"))
    own.validate()
    assert own.pg_host == "10.231.7.2"


@pytest.mark.parametrize(
    ("address", "peer", "message"),
    [
        ("192.0.2.2", "10.231.7.1", r"db_host\.address='192\.0\.2\.2' is invalid"),
        ("10.231.7.2", "10.232.0.1", r"db_host\.peer='10\.232\.0\.1' is invalid"),
        ("db.example.com", "10.231.7.1", r"db_host\.address='db\.example\.com' is invalid"),
    ],
)
def test_a_database_host_elsewhere_is_refused(address: str, peer: str, message: str) -> None:
    settings = StackSettings(db_host=DbHost("perfci-0a1b2c", address, peer))
    with pytest.raises(ConfigError, match=message + r": the stack's own database hosts live in"):
        settings.validate()
