"""The zoo's table (``perfci calibrate --zoo``): expected against actual verdict per patch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ci.render.escape import md


class ZooRow(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def expected(self) -> str: ...
    @property
    def actual(self) -> str: ...
    @property
    def metric(self) -> str | None: ...
    @property
    def named(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def ok(self) -> bool: ...


def zoo_markdown(rows: Sequence[ZooRow]) -> str:
    """A Markdown table, then one line: how many patches got the verdict they should."""
    lines = [
        "| patch | expected | actual | metric named | reason | s | |",
        "|---|---|---|---|---|---:|---|",
    ]
    for r in rows:
        metric = "-" if r.metric is None else f"{md(r.metric)} ({'yes' if r.named else 'NO'})"
        lines.append(
            f"| {md(r.name)} | {r.expected} | {r.actual} | {metric} | {md(r.reason)} "
            f"| {r.seconds:.0f} | {'ok' if r.ok else 'MISMATCH'} |"
        )
    good = sum(r.ok for r in rows)
    lines += ["", f"{good} of {len(rows)} patches got the expected verdict on the expected metric."]
    return "\n".join(lines) + "\n"
