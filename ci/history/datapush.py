"""Append to the history's data branch safely when several pushes to main race.

Each attempt starts from the remote branch's newest commit and re-applies this run's
change to it (fetch, then rebase by re-applying), commits, and pushes without force. A
push that loses the race is rejected by the remote as not a fast-forward; the next
attempt fetches the new tip and re-applies, after a short randomised pause. The change
is re-applied instead of rebasing its diff because two runs append a row at the same
place of the same CSV file, which a textual rebase reports as a conflict, while adding
a row is idempotent and commutes (rows are kept in commit order).

The branch is created (without history: an orphan) by the first push. The work folder
is this module's own: it is reset to the remote's tip on every attempt, so never point
it at a checkout holding other work.

A token, when given, reaches git through ``GIT_CONFIG_*`` environment variables (an
``http.extraheader``, as actions/checkout sets it): never on a command line, never in a
file.
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ci.errors import RunError

AUTHOR_NAME = "perfci"
AUTHOR_EMAIL = "perfci@users.noreply.github.com"
GIT_TIMEOUT_S = 120.0

#: Applies this run's change to the work folder; returns False when there was nothing to do.
Apply = Callable[[Path], bool]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    commit: str | None  # the pushed commit; None when the change was already there
    attempts: int
    created_branch: bool


class _Git:
    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = {**os.environ, **env}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [
            *["git", "-C", str(self.workdir)],
            *["-c", f"user.name={AUTHOR_NAME}", "-c", f"user.email={AUTHOR_EMAIL}"],
            *["-c", "commit.gpgsign=false", *args],
        ]
        try:
            proc = subprocess.run(
                cmd,
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
                timeout=GIT_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise RunError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:.0f} s") from exc
        if check and proc.returncode != 0:
            raise RunError(f"git {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
        return proc


def auth_env(remote: str, token: str | None) -> dict[str, str]:
    """``GIT_CONFIG_*`` variables that send ``token`` to ``remote``'s host over HTTPS."""
    if not token:
        return {}
    parts = urlsplit(remote)
    if parts.scheme != "https" or not parts.hostname:
        raise RunError(f"a token is only sent to an https:// remote, not to {remote!r}")
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.https://{parts.netloc}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def push_change(
    workdir: Path,
    remote: str,
    branch: str,
    apply: Apply,
    message: str,
    *,
    token: str | None = None,
    attempts: int = 5,
    pause_s: float = 2.0,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushOutcome:
    """Apply, commit and push to ``remote``'s ``branch``; retry a lost race ``attempts`` times."""
    if attempts < 1:
        raise RunError(f"attempts = {attempts}: expected at least 1")
    if not branch or branch.startswith("-") or " " in branch:
        raise RunError(f"branch {branch!r} is not a branch name")
    rng = rng or random.Random()
    git = _Git(workdir, auth_env(remote, token))
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / ".git").exists():
        git.run("init", "--quiet")
    ref = f"refs/remotes/perfci/{branch}"
    for attempt in range(1, attempts + 1):
        exists = _fetch(git, remote, branch, ref)
        if exists:
            git.run("checkout", "--quiet", "--force", "-B", branch, ref)
        else:  # an unborn branch with an empty index: the first commit is an orphan
            git.run("update-ref", "-d", f"refs/heads/{branch}", check=False)
            git.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
            git.run("rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".")
        git.run("clean", "-d", "--force", "--quiet", "-x")
        if not apply(workdir):
            return PushOutcome(None, attempt, False)
        git.run("add", "--all", ".")
        if exists and git.run("diff", "--cached", "--quiet", check=False).returncode == 0:
            return PushOutcome(None, attempt, False)
        git.run("commit", "--quiet", "--no-verify", "-m", message)
        commit = git.run("rev-parse", "HEAD").stdout.strip()
        push = git.run("push", "--quiet", remote, f"HEAD:refs/heads/{branch}", check=False)
        if push.returncode == 0:
            return PushOutcome(commit, attempt, not exists)
        if not _lost_race(push.stderr) or attempt == attempts:
            raise RunError(
                f"pushing to {branch} failed (attempt {attempt} of {attempts}): "
                f"{push.stderr.strip()[-500:]}"
            )
        # Someone pushed first: back off a little (jittered, so racers spread out) and redo.
        sleep(pause_s * attempt * (0.5 + rng.random()))
    raise AssertionError("unreachable: the loop returns or raises")


def _fetch(git: _Git, remote: str, branch: str, ref: str) -> bool:
    """Fetch ``branch`` into ``ref``; False when the remote has no such branch yet."""
    listed = git.run("ls-remote", "--heads", remote, f"refs/heads/{branch}", check=True)
    if not listed.stdout.strip():
        return False
    git.run("fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{ref}")
    return True


def _lost_race(stderr: str) -> bool:
    text = stderr.lower()
    return any(
        s in text
        for s in (
            "non-fast-forward",
            "fetch first",
            "cannot lock ref",
            "failed to update ref",
            "stale info",
        )
    )
