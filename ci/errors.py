"""The one exception family of the ``ci`` package.

Only the CLI entry point catches these, prints ``error: ...`` and picks the exit code.
"""

from __future__ import annotations


class PerfCIError(Exception):
    """Base class of every error raised on purpose by ``ci``."""


class ResultsError(PerfCIError):
    """A results file is unreadable, malformed or unsupported."""


class ConfigError(PerfCIError):
    """``perf.toml`` is malformed or holds a bad value."""


class ComparisonError(PerfCIError):
    """Runs cannot be compared (for example: no runs at all)."""


class MetadataMismatch(ComparisonError):
    """Base and candidate runs differ in something that makes comparing them meaningless."""


class RenderError(PerfCIError):
    """A report or comment could not be rendered."""


class PostError(PerfCIError):
    """Posting a check run, a comment or an issue to GitHub failed."""


class StackError(PerfCIError):
    """The embedded stack could not be started, found or stopped."""


class SeedError(PerfCIError):
    """The corpus could not be generated or loaded."""


class RunError(PerfCIError):
    """A load scenario could not be run or its output could not be read."""


class SideFailure(PerfCIError):
    """One side of a PR gate failed in its own code (venv, loader, service, answers): that
    side's fault, not the harness's. ``side`` is "base" or "candidate"."""

    def __init__(self, side: str, message: str) -> None:
        super().__init__(message)
        self.side = side
