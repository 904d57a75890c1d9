"""The pipeline's settings, read once at the entry point.

* :class:`StackSettings` (``env``): where the stack lives and how it starts, from
  ``PERFCI_*`` environment variables and the command line.
* :class:`PerfConfig` (``perf``): ``perf.toml``, the judging settings and the SLA.
"""

from __future__ import annotations

from ci.settings.env import SERVERS, StackSettings
from ci.settings.history import HistoryConfig
from ci.settings.perf import (
    REPO_PERF_TOML,
    SLA_FIELDS,
    PerfConfig,
    SlaConfig,
    load_perf_config,
    parse_perf_config,
    repo_sla,
)

__all__ = [
    "REPO_PERF_TOML",
    "SERVERS",
    "SLA_FIELDS",
    "HistoryConfig",
    "PerfConfig",
    "SlaConfig",
    "StackSettings",
    "load_perf_config",
    "parse_perf_config",
    "repo_sla",
]
