"""``perfci history backfill``: past commits of main measured, so an adopter starts with a history.

Each commit is checked out in a detached worktree (:func:`ci.experiments.worktrees.worktrees`)
and measured with the *current* harness, so that every row of the history was measured
the same way and only the system under test differs:

1. a PostgreSQL + Valkey of its own (:func:`ci.stack.start_server_set`);
2. the corpus loaded by the commit's own loader, the service started from the commit's
   own code (its ``service/``; ``code_root`` of ci.seed and ci.stack);
3. today's ``perfci run --target URL`` path (:func:`ci.measure.run.execute`) against it,
   the service's processes sampled through the stack state written for it;
4. the results added to the store like ``perfci history add`` does.

A commit that cannot be measured (it does not start, its loader fails) is reported and
skipped; the others are still measured.
"""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci import stack
from ci.errors import ConfigError, PerfCIError, RunError
from ci.experiments.worktrees import Checkout, worktrees
from ci.history.add import AddOutcome, add_results, commit_info
from ci.measure.profiles import Profile
from ci.measure.run import RunRequest, execute
from ci.results import load_results
from ci.seed import seed_corpus
from ci.settings import SlaConfig
from ci.stack.state import StackState, state_path, write_state

Progress = Callable[[str], None]
#: Measures one checked-out commit with the current harness; returns its results.json.
Measure = Callable[[Checkout, Path], Path]


@dataclass(frozen=True, slots=True)
class BackfillOutcome:
    measured: tuple[tuple[str, tuple[AddOutcome, ...]], ...]  # (commit, rows added)
    failed: tuple[tuple[str, str], ...]  # (commit, why)


def select_commits(repo: Path, start: str, end: str, every: int = 1) -> list[str]:
    """``start``, then main's first-parent line up to ``end``, oldest first; every Nth
    counted back from ``end`` (so ``end`` is always measured)."""
    if every < 1:
        raise ConfigError(f"--every {every}: expected at least 1")
    first = _git(repo, "rev-parse", "--verify", f"{start}^{{commit}}")
    last_commit = _git(repo, "rev-parse", "--verify", f"{end}^{{commit}}")
    ancestor = subprocess.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", first, last_commit], check=False
    )
    if ancestor.returncode != 0:
        raise ConfigError(f"--from {start} is not an ancestor of --to {end}")
    line = _git(repo, "rev-list", "--first-parent", "--reverse", f"{first}..{last_commit}")
    commits = [first, *line.split()]
    last = len(commits) - 1
    return [c for i, c in enumerate(commits) if (last - i) % every == 0]


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ConfigError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def stack_measure(
    profile: Profile,
    scenarios: Sequence[str],
    sla: SlaConfig,
    progress: Progress,
    seed: int = 42,
) -> Measure:
    """The real :data:`Measure`: a stack of the commit's code, today's run against it."""

    def measure(checkout: Checkout, scratch: Path) -> Path:
        home = scratch / "home"
        settings = stack.loopback_settings(home)
        env = {"SEARCH_EMBEDDER": profile.embedder, "SEARCH_ADMIN_TOKEN": secrets.token_urlsafe(16)}
        servers = stack.start_server_set(settings)
        try:
            seed_corpus(
                home, servers.pg.url, profile.docs, seed, env,
                code_root=checkout.path, progress=progress,
            )  # fmt: skip
            svc = servers.start_service(home / "service", service_env=env, code_root=checkout.path)
            # The run samples the service's processes when its run folder's stack state
            # names the target: write the state of this stack there.
            write_state(
                StackState(
                    run_dir=str(home),
                    postgres=servers.pg,
                    redis=servers.valkey,
                    service=svc,
                    workers=1,
                    server=settings.server,
                    service_env=env,
                    pg_data_dir=str(servers.pg_data),
                    started_at=time.time(),
                )
            )
            request = RunRequest(
                profile=profile,
                scenarios=tuple(scenarios),
                out_dir=scratch / "runs",
                stack=dataclasses.replace(settings, service_env=env),
                target=svc.url,
                seed=seed,
                rss_slope_mb_per_10min=sla.rss_slope_mb_per_10min,
                sla=sla,
            )
            outcome = execute(request, progress)
            return outcome.run_dir / "results.json"
        finally:
            state_path(home).unlink(missing_ok=True)
            servers.close(remove_data=True)

    return measure


def backfill(
    repo: Path,
    commits: Sequence[str],
    store: Path,
    *,
    measure: Measure,
    profile: str,
    machine_class: str | None,
    directions: Mapping[str, str],
    progress: Progress = lambda _m: None,
    scratch: Path | None = None,
) -> BackfillOutcome:
    """Measure each commit in its own worktree and add its rows to ``store``."""
    measured: list[tuple[str, tuple[AddOutcome, ...]]] = []
    failed: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="perfci-backfill-", dir=scratch) as tmp:
        for i, commit in enumerate(commits, start=1):
            info = commit_info(repo, commit)
            progress(f"[{i}/{len(commits)}] {commit[:12]} {info.subject[:60]}")
            work = Path(tmp) / f"{i:04d}"
            work.mkdir()
            try:
                with worktrees(repo, {"rev": commit}, work) as checkouts:
                    results_path = measure(checkouts["rev"], work)
                added = add_results(
                    store,
                    load_results(results_path),
                    info,
                    source=str(results_path),
                    profile=profile,
                    machine_class=machine_class,
                    directions=directions,
                )
            except PerfCIError as exc:
                progress(f"  {commit[:12]} not measured: {exc}")
                failed.append((commit, str(exc)))
                continue
            measured.append((commit, tuple(added)))
    if not measured and failed:
        raise RunError(
            f"no commit could be measured; the first failure ({failed[0][0][:12]}): {failed[0][1]}"
        )
    return BackfillOutcome(tuple(measured), tuple(failed))
