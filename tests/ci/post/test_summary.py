from __future__ import annotations

from pathlib import Path

import pytest

from ci.errors import PostError
from ci.post.summary import append_job_summary


def test_appends_to_the_step_summary(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(target)}
    assert append_job_summary("**Performance: PASS**\n\n", env) == target
    assert append_job_summary("second", env) == target
    assert target.read_text() == "earlier step\n**Performance: PASS**\nsecond\n"


def test_outside_actions_nothing_is_written() -> None:
    assert append_job_summary("x", {}) is None
    assert append_job_summary("x", {"GITHUB_STEP_SUMMARY": ""}) is None


def test_unwritable_summary_is_a_post_error(tmp_path: Path) -> None:
    with pytest.raises(PostError, match="cannot append the job summary"):
        append_job_summary("x", {"GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "such" / "f")})
