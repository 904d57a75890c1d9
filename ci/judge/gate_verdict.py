"""The PR gate's verdict file (``verdict.json``): versioned, typed, everything the check needs.

``perfci gate`` writes it into its report folder; the check run and the comment
(``ci/post``) and the report (``ci/render``) read it and decide nothing themselves. It
names both revisions, the harness that drove them, the rule and the design, every look's
metric judgements, the SLA rows, the report-only metrics and the wall time.

=======  ===================================================================
version  what changed
=======  ===================================================================
1        the first format
=======  ===================================================================

Exit codes of ``perfci gate`` (:func:`gate_exit_code`): 0 pass, 1 fail, 3 inconclusive;
2 is a usage, configuration or input error, or a crash, and then no verdict file exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from ci.errors import ResultsError
from ci.results.codec import read_json_file

VERDICT_KIND = "perfci-gate-verdict"
VERDICT_VERSION = 1
VERDICT_FILE = "verdict.json"

GateDecision = Literal["pass", "fail", "inconclusive"]
LookDecision = Literal["pass", "fail", "continue", "inconclusive"]
SlaStatus = Literal["pass", "fail", "pre-existing", "skipped"]

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 3


def gate_exit_code(decision: GateDecision) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}[decision]


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Revision(_Struct, frozen=True, forbid_unknown_fields=True):
    ref: str
    sha: str


class Harness(_Struct, frozen=True, forbid_unknown_fields=True):
    revision: str  # commit whose ci/, scenarios/, perf.toml drove both sides
    source: str  # "base revision" | "current checkout (base predates the gate)"
    changed: bool  # the pull request changed harness files
    paths: tuple[str, ...]  # which ones


class RuleMetric(_Struct, frozen=True, forbid_unknown_fields=True):
    """A primary metric as ``perf.toml [gate]`` declared it (so a folder re-judges alone)."""

    name: str
    direction: str
    mode: str
    fail_threshold: float


class Rule(_Struct, frozen=True, forbid_unknown_fields=True):
    alpha: float
    pass_alpha: float
    looks: tuple[int, ...]
    min_tail_samples: int
    report_threshold: float
    report_alpha: float
    order_seed: int  # seed of the shuffled ABBA blocks (and of the shape order)
    bootstrap_seed: int | None  # the gate uses no bootstrap: exact tests only (None)
    metrics: tuple[RuleMetric, ...] = ()  # the primary metrics declared (gated or demoted)


class Design(_Struct, frozen=True, forbid_unknown_fields=True):
    rate: float
    window_s: float
    warmup_windows: int
    unique_fraction: float
    write_fraction: float
    workers: int
    docs: int
    embedder: str
    shapes: tuple[str, ...]
    shape_time_scale: float
    machine_class: str


class MetricLook(_Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    direction: str
    mode: str
    fail_threshold: float
    pairs: int
    estimate: float  # Hodges-Lehmann, on the effect scale (log ratio or difference)
    change: float  # relative change (ratio) or difference (absolute)
    p_worse: float
    p_within: float
    rejected: bool
    failed: bool
    within: bool
    base_median: float
    candidate_median: float


class Look(_Struct, frozen=True, forbid_unknown_fields=True):
    look: int  # 0-based
    pairs: int
    decision: LookDecision
    level: float
    metrics: tuple[MetricLook, ...]


class Demoted(_Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    reason: str


class ReportRow(_Struct, frozen=True, forbid_unknown_fields=True):
    scenario: str  # "duet" for the windows
    metric: str
    mode: str
    base: float
    candidate: float
    change: float
    ci_low: float
    ci_high: float
    p_two_sided: float
    changed: bool  # clearly changed: shown outside the collapsed section
    note: str | None = None


class SlaRow(_Struct, frozen=True, forbid_unknown_fields=True):
    scenario: str
    metric: str
    limit: float
    comparator: str  # "<" | ">"
    base: float | None
    candidate: float
    status: SlaStatus
    message: str | None = None


class Timings(_Struct, frozen=True, forbid_unknown_fields=True):
    total_s: float
    setup_s: float
    windows_s: float
    shapes_s: float


class GateVerdict(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: str = VERDICT_KIND
    version: int = VERDICT_VERSION
    created_at: str
    decision: GateDecision
    statistical_decision: LookDecision  # the windows' own decision, before the SLA
    reasons: tuple[str, ...]
    base: Revision
    candidate: Revision
    harness: Harness
    rule: Rule
    design: Design
    pairs: int  # measured windows judged
    looks: tuple[Look, ...]
    demoted: tuple[Demoted, ...]
    report_only: tuple[ReportRow, ...]
    sla: tuple[SlaRow, ...]
    timings: Timings
    files: dict[str, str]  # role -> path relative to the report folder

    def __post_init__(self) -> None:
        if self.kind != VERDICT_KIND:
            raise ValueError(f"kind {self.kind!r}: not a gate verdict ({VERDICT_KIND!r})")
        if self.version != VERDICT_VERSION:
            raise ValueError(f"version {self.version}: this perfci reads version {VERDICT_VERSION}")

    @property
    def exit_code(self) -> int:
        return gate_exit_code(self.decision)

    @property
    def headline(self) -> str:
        first = self.reasons[0] if self.reasons else ""
        return f"Performance gate: {self.decision.upper()}" + (f" \u2014 {first}" if first else "")


def dump_verdict(verdict: GateVerdict, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(verdict), indent=2) + b"\n")
    os.replace(tmp, target)


def load_verdict(path: str | os.PathLike[str]) -> GateVerdict:
    """Read and validate a verdict file; every problem is a :class:`ResultsError`."""
    source = os.fspath(path)
    data = read_json_file(source)
    try:
        return msgspec.convert(data, GateVerdict, strict=True)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ResultsError(f"{source}: not a valid gate verdict: {exc}") from exc
