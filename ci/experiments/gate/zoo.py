"""``perfci calibrate --zoo``: the gate on realistic regressions, each against its parent.

=====  =========================================================================
step   what
=====  =========================================================================
1      read ``zoo/README.md``'s table: each patch, what it costs users, the
       verdict it must get and the metric a reason must name (:func:`read_zoo`)
2      per patch: a detached worktree at the parent (HEAD), ``git apply`` the
       patch, commit it (:func:`zoo_commit`); the worktree is removed, the commit
       stays in the object store for the gate's own checkouts
3      the gate on parent → patched commit, through :func:`run_gate` (the entry
       point of ``perfci gate``), its report folder under ``<out>/<patch>/``
4      expected against actual (:class:`ZooResult`), ``zoo.json`` and ``zoo.md``
=====  =========================================================================

A patch that no longer applies is a result of its own ("does not apply"), not a crash: the
table then says which patch to refresh.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ci.errors import ConfigError, RunError
from ci.experiments.gate.commits import commit_on, git
from ci.render.zoo import zoo_markdown

ZOO_DIR = "zoo"
ZOO_TABLE = "README.md"
ZOO_JSON = "zoo.json"
ZOO_MD = "zoo.md"
ZOO_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
Expected = Literal["pass", "fail"]
Progress = Callable[[str], None]
_EXPECTED: dict[str, Expected] = {"pass": "pass", "fail": "fail"}


@dataclass(frozen=True, slots=True)
class ZooPatch:
    """One row of ``zoo/README.md``'s table."""

    name: str
    path: Path
    loses: str  # what users lose
    expected: Expected
    metric: str | None  # a word a reason of the verdict must contain


@dataclass(frozen=True, slots=True)
class ZooResult:
    name: str
    expected: Expected
    actual: str  # pass | fail | inconclusive | does not apply
    metric: str | None
    named: bool  # a reason names the metric (True when none is expected)
    reason: str  # the verdict's first reason (or why it did not run)
    seconds: float
    folder: str | None

    @property
    def ok(self) -> bool:
        return self.actual == self.expected and self.named


def read_zoo(repo: Path) -> tuple[ZooPatch, ...]:
    """The zoo's table; every row's patch file must exist and every patch file have a row."""
    root = repo / ZOO_DIR
    table = root / ZOO_TABLE
    try:
        lines = table.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{table}: cannot read the zoo's table: {exc}") from exc
    patches = []
    for n, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("patch", "") or set(cells[0]) <= {"-"}:
            continue
        if len(cells) != 4:
            raise ConfigError(f"{table}:{n}: a row needs 4 cells (patch, loses, expected, metric)")
        name, loses, expected, metric = cells
        if not _NAME.match(name):
            raise ConfigError(f"{table}:{n}: {name!r} is not a patch name (a-z, 0-9, -)")
        if expected not in _EXPECTED:
            raise ConfigError(f"{table}:{n}: expected = {expected!r}: must be pass or fail")
        path = root / f"{name}.patch"
        if not path.is_file():
            raise ConfigError(f"{table}:{n}: {path} does not exist")
        verdict = _EXPECTED[expected]
        patches.append(ZooPatch(name, path, loses, verdict, None if metric == "-" else metric))
    listed = {p.name for p in patches}
    unlisted = sorted(p.stem for p in root.glob("*.patch") if p.stem not in listed)
    if unlisted:
        raise ConfigError(f"{table}: no row for {', '.join(unlisted)}")
    if not patches:
        raise ConfigError(f"{table}: the table lists no patch")
    return tuple(patches)


def select(patches: Sequence[ZooPatch], only: Sequence[str]) -> tuple[ZooPatch, ...]:
    """The patches named by ``--only`` (all when none is)."""
    names = {p.name for p in patches}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ConfigError(f"--only {unknown[0]}: no such patch (known: {', '.join(sorted(names))})")
    return tuple(p for p in patches if not only or p.name in only)


def zoo_commit(repo: Path, parent: str, patch: ZooPatch, work: Path) -> str:
    """A commit of ``patch`` on ``parent``, made in a temporary detached worktree."""

    def apply(tree: Path) -> None:
        git(tree, "apply", "--index", str(patch.path.resolve()))

    return commit_on(repo, parent, work / f"zoo-{patch.name}", f"zoo: {patch.name}", apply)


def judge_entry(patch: ZooPatch, decision: str, reasons: Sequence[str]) -> tuple[bool, str]:
    """Whether a reason names the patch's metric, and the reason to show."""
    named = patch.metric is None or any(patch.metric in r for r in reasons)
    if patch.metric is not None:
        naming = [r for r in reasons if patch.metric in r]
        if naming:
            return named, naming[0]
    return named, reasons[0] if reasons else decision


GateOne = Callable[[str, str, Path], tuple[str, tuple[str, ...]]]


def run_zoo(
    repo: Path,
    patches: Sequence[ZooPatch],
    out_dir: Path,
    gate_one: GateOne,
    progress: Progress = lambda _m: None,
) -> list[ZooResult]:
    """Each patch against HEAD through ``gate_one(parent, candidate, folder)`` (which returns
    the decision and the reasons); ``zoo.json`` and ``zoo.md`` are rewritten after each."""
    parent = git(repo, "rev-parse", "HEAD")
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[ZooResult] = []
    with tempfile.TemporaryDirectory(prefix="perfci-zoo-") as tmp:
        for patch in patches:
            t0 = time.monotonic()
            try:
                candidate = zoo_commit(repo, parent, patch, Path(tmp))
            except RunError as exc:
                results.append(
                    ZooResult(
                        patch.name,
                        patch.expected,
                        "does not apply",
                        patch.metric,
                        False,
                        str(exc),
                        0.0,
                        None,
                    )
                )
                progress(f"{patch.name}: does not apply ({exc})")
                continue
            folder = out_dir / patch.name
            progress(f"{patch.name}: gate {parent[:12]} -> {candidate[:12]} ({patch.loses})")
            decision, reasons = gate_one(parent, candidate, folder)
            named, reason = judge_entry(patch, decision, reasons)
            results.append(
                ZooResult(
                    patch.name,
                    patch.expected,
                    decision,
                    patch.metric,
                    named,
                    reason,
                    round(time.monotonic() - t0, 1),
                    str(folder),
                )
            )
            write_zoo(out_dir, parent, results)
    write_zoo(out_dir, parent, results)
    return results


def write_zoo(out_dir: Path, parent: str, results: Sequence[ZooResult]) -> None:
    """``zoo.json`` (the figures) and ``zoo.md`` (the table)."""
    data = {
        "version": ZOO_VERSION,
        "parent": parent,
        "results": [{**asdict(r), "ok": r.ok} for r in results],
    }
    (out_dir / ZOO_JSON).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out_dir / ZOO_MD).write_text(zoo_markdown(results), encoding="utf-8")
