"""The calibration's report (``perfci calibrate``): per kind, how often the gate said what,
with exact 95 % intervals; then every verdict."""

from __future__ import annotations

from ci.judge.calibration import (
    MAX_INCONCLUSIVE_SHARE,
    Calibration,
    Dispersion,
    Rate,
    Spread,
    calibration_ok,
    offset_fail_share,
)


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _rate(r: Rate) -> str:
    return f"{r.k}/{r.n} = {_pct(r.value)} [{_pct(r.low)}, {_pct(r.high)}]"


def _change(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f} %"


def _cpu(s: Spread | None) -> str:
    return "-" if s is None else f"{_change(s.median)} ({_change(s.low)} to {_change(s.high)})"


def _sd(d: Dispersion | None) -> str:
    return "-" if d is None else f"{_pct(d.sd)} [{_pct(d.low)}, {_pct(d.high)}]"


def _count(s: Spread) -> str:
    return f"{s.median:g} ({s.low:g} to {s.high:g})"


def _outcome(calibration: Calibration) -> str:
    aa = next((s for s in calibration.summary if s.kind == "aa"), None)
    if aa is None:
        return "No A/A verdict yet: nothing to judge the gate's false alarms by (exit 0)."
    limit = f"{MAX_INCONCLUSIVE_SHARE * 100:g} %"
    counts = f"{aa.fails} of {aa.verdicts} A/A verdicts FAILed, {aa.inconclusive} INCONCLUSIVE"
    if calibration_ok(calibration.summary):
        return f"Passed (exit 0): {counts} (allowed: no FAIL, at most {limit} INCONCLUSIVE)."
    return f"Failed (exit 1): {counts} (allowed: no FAIL, at most {limit} INCONCLUSIVE)."


def _offset(calibration: Calibration) -> list[str]:
    """What the A/A verdicts' CPU spread costs under the campaign's CPU threshold."""
    aa = next((s for s in calibration.summary if s.kind == "aa"), None)
    threshold = calibration.cpu_fail_threshold
    if aa is None or aa.cpu_change_sd is None or threshold is None:
        return []
    d = aa.cpu_change_sd
    at = [offset_fail_share(x, threshold) for x in (d.sd, d.low, d.high)]
    return [
        "",
        f"The A/A CPU change has an SD of {_sd(d)} over {d.n} verdicts: the offset between "
        f"two processes of identical code. With the CPU fail threshold of "
        f"+{threshold * 100:g} %, an offset of that SD alone FAILs about {_pct(at[0])} of "
        f"identical pull requests ({_pct(at[1])} to {_pct(at[2])} over its interval).",
    ]


def calibration_markdown(calibration: Calibration) -> str:
    """Markdown: the summary table, the pass rule's outcome, then one row per verdict."""
    names = {
        "aa": "A/A (a comment)",
        "slowed": f"slowed (+{calibration.slowdown * 100:g} % CPU per search)",
    }
    lines = [
        f"Calibration of `{calibration.ref}` ({calibration.parent[:12]}), seed "
        f"{calibration.seed}: each verdict a full gate on a fresh stack.",
        "",
        "| kind | verdicts | pass | fail | inconclusive | FAIL rate (95 % CI) | "
        "INCONCLUSIVE rate (95 % CI) | windows: median (range) | wall time s: median (range) | "
        "CPU change: median (range) | CPU change: SD (95 % CI) |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for s in calibration.summary:
        lines.append(
            f"| {names[s.kind]} | {s.verdicts} | {s.passes} | {s.fails} | {s.inconclusive} | "
            f"{_rate(s.fail_rate)} | {_rate(s.inconclusive_rate)} | {_count(s.windows)} | "
            f"{s.seconds.median:.0f} ({s.seconds.low:.0f} to {s.seconds.high:.0f}) | "
            f"{_cpu(s.cpu_change)} | {_sd(s.cpu_change_sd)} |"
        )
    if not calibration.summary:
        lines.append("| (no verdict yet) | 0 | | | | | | | | | |")
    lines += _offset(calibration)
    lines += [
        "",
        _outcome(calibration),
        "",
        "| verdict | decision | windows | stopped | wall time s | CPU change | seed | candidate |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {v.folder} | {v.decision} | {v.windows} | {v.stopped} | {v.seconds:.0f} | "
        f"{_change(v.cpu_change)} | {v.seed} | {v.candidate[:12]} |"
        for v in calibration.verdicts
    ]
    return "\n".join(lines) + "\n"
