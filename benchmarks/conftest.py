"""The benchmarks reuse the test suite's real stack fixtures."""

from tests.harness import corpus, servers  # noqa: F401  # re-exported pytest fixtures
