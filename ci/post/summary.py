"""The GitHub Actions job summary: rendered Markdown appended to ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ci.errors import PostError


def append_job_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to the job summary; ``None`` (nothing written) outside Actions."""
    env = os.environ if env is None else env
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n")
    except OSError as exc:
        raise PostError(f"{path}: cannot append the job summary: {exc}") from exc
    return path
