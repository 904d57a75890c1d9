"""The table of ``perfci chaos`` (Markdown: printed, and written as ``chaos.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

# What the table reads, as protocols: render sits below experiments and never imports them.


class ChaosRun(Protocol):
    @property
    def rate(self) -> float: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def driver(self) -> str: ...


class ChaosOutcome(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def requests(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def statuses(self) -> Mapping[str, int]: ...
    @property
    def figures(self) -> Mapping[str, float | int | str | None]: ...
    @property
    def checks(self) -> Mapping[str, bool]: ...


def chaos_table(cfg: ChaosRun, outcomes: Sequence[ChaosOutcome]) -> str:
    lines = [
        f"Chaos experiments: {cfg.rate:g} req/s for {cfg.duration_s:g} s each ({cfg.driver}).",
        "",
        "| experiment | requests | failed | statuses | figures | expectation |",
        "|---|---:|---:|---|---|---|",
    ]
    for o in outcomes:
        statuses = ", ".join(f"{k}: {v}" for k, v in o.statuses.items())
        figures = ", ".join(f"{k} {v}" for k, v in o.figures.items())
        checks = "; ".join(f"{'ok' if v else 'FAILED'} {k}" for k, v in o.checks.items())
        lines.append(
            f"| {o.name} | {o.requests} | {o.failures} | {statuses} | {figures} | {checks} |"
        )
    return "\n".join(lines) + "\n"
