"""The benchmarks reuse the test suite's real stack fixtures."""

from tests.conftest import corpus, servers  # noqa: F401  # re-exported pytest fixtures
