"""The cache tests' Valkey URL: a Valkey of the test's own (``tests.harness.own_valkey``)."""

from __future__ import annotations

import pytest

from tests.harness import OwnValkey


@pytest.fixture
def valkey_url(own_valkey: OwnValkey) -> str:
    return own_valkey.url
