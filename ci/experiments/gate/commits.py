"""A commit on top of a parent, made in a temporary detached worktree.

The zoo (a patch on HEAD) and the calibration (a comment, or the slowdown knob, on the
calibrated revision) both gate a commit against its parent, as a user's pull request would
be gated. The worktree is removed afterwards; the commit stays in the object store, where
the gate's own checkouts find it. The caller's checkout (branch, index, files) is untouched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ci.errors import RunError

_IDENTITY = ("-c", "user.name=perfci", "-c", "user.email=perfci@localhost")


def git(repo: Path, *args: str) -> str:
    """``git -C repo args``' output; a failure is a :class:`RunError` with git's message."""
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def commit_on(
    repo: Path, parent: str, tree: Path, message: str, edit: Callable[[Path], None]
) -> str:
    """The commit of ``edit(tree)``'s changes on ``parent``; ``tree`` is the worktree's path."""
    git(repo, "worktree", "add", "--detach", str(tree), parent)
    try:
        edit(tree)
        git(tree, "add", "--all")
        git(tree, *_IDENTITY, "commit", "--no-verify", "-q", "-m", message)
        return git(tree, "rev-parse", "HEAD")
    finally:
        git(repo, "worktree", "remove", "--force", str(tree))
