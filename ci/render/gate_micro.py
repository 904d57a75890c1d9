"""The micro-benchmarks' table, as the comment and the HTML report show it.

Plain text cells from the verdict's figures (:class:`~ci.results.micro.MicroRun`), judged
by :func:`ci.judge.micro.judge_micro` under the verdict's rule; nothing is decided here.
Case names come from the verdict file (untrusted): the Markdown side escapes them, the
HTML template's autoescape does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from ci.judge.gate_verdict import GateVerdict
from ci.judge.micro import MicroCase, judge_micro, per_call, relative
from ci.render.escape import md

STATUS_WORDS = {"fail": "FAIL", "changed": "changed", "pass": "pass", "missing": "missing"}


@dataclass(frozen=True, slots=True)
class MicroRow:
    case: str  # from the verdict file: escape it
    base: str
    candidate: str
    change: str  # the change per call and its 95 % interval
    limit: str
    status: str  # FAIL | changed | pass | missing
    note: str | None  # from the verdict's figures (a missing case's side): escape it


@dataclass(frozen=True, slots=True)
class MicroTable:
    caption: str
    rows: tuple[MicroRow, ...]


def _change(c: MicroCase) -> str:
    if c.change is None or c.interval is None:
        return "n/a"
    lo, hi = c.interval
    return f"{relative(c.change)} [{relative(lo)}, {relative(hi)}]"


def micro_table(v: GateVerdict) -> MicroTable | None:
    """The verdict's micro-benchmarks as rows (None: not measured)."""
    if v.micro is None:
        return None
    check = judge_micro(v.micro, v.rule)
    limit = relative(v.rule.micro_threshold)
    rounds = len(v.micro.rounds)
    caption = (
        f"median time per call over {rounds} rounds, a fresh process per side in each; "
        f"p \u2264 {check.level:g}, Holm over {check.judged} cases"
    )
    if check.judged and not check.reachable:
        caption += f"; {rounds} rounds cannot reach that level: no case can fail"
    rows = tuple(
        MicroRow(
            case=c.name,
            base=per_call(c.base),
            candidate=per_call(c.candidate),
            change=_change(c),
            limit="-" if c.status == "missing" else limit,
            status=STATUS_WORDS[c.status],
            note=c.note,
        )
        for c in check.cases
    )
    return MicroTable(caption, rows)


def micro_cells(v: GateVerdict) -> dict[str, Any] | None:
    """:func:`micro_table` as the comment's Markdown cells (case names and notes escaped)."""
    table = micro_table(v)
    if table is None:
        return None
    return {
        "caption": Markup(table.caption),  # numbers formatted here only
        "rows": [
            {
                "case": md(r.case, 80),
                "base": Markup(r.base),
                "candidate": Markup(r.candidate),
                "change": Markup(r.change),
                "limit": Markup(r.limit),
                "status": Markup("**FAIL**" if r.status == "FAIL" else r.status),
                "note": md(r.note, 200) if r.note else None,
            }
            for r in table.rows
        ],
    }
