"""The GitHub workflows: schema-valid, zizmor-clean, and shaped the way the design needs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ci.settings import load_perf_config

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
NAMES = [p.name for p in FILES]
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
WRITE = re.compile(r"\bwrite\b")


def _load(name: str) -> dict[str, Any]:
    # YAML 1.2 (ruamel): `on` stays a string key (PyYAML would read it as True).
    data = YAML(typ="safe").load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed"
    return found


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_expected_workflows_exist() -> None:
    assert {"ci.yml", "perf-pr.yml", "perf-comment.yml", "perf-baseline.yml"} <= set(NAMES)


def test_workflows_match_the_github_schema() -> None:
    proc = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_has_no_findings() -> None:
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for step in _steps(_load(name)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{name}: {step['uses']} is not pinned to a SHA"
    # and each pin carries the version it stands for
    for line in text.splitlines():
        if line.strip().startswith(("uses:", "- uses:")):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_and_no_persisted_credentials(name: str) -> None:
    workflow = _load(name)
    assert workflow["permissions"] == {}, f"{name}: top-level permissions must be {{}}"
    assert "concurrency" in workflow
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}/{job_name}: no job permissions"
        assert job.get("timeout-minutes"), f"{name}/{job_name}: no timeout"
    for step in _steps(workflow):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_perf_pr_has_no_write_permission_and_no_secrets() -> None:
    workflow = _load("perf-pr.yml")
    text = (WORKFLOWS / "perf-pr.yml").read_text()
    assert set(workflow["on"]) == {"pull_request"}  # never pull_request_target
    for job in workflow["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
    assert "secrets." not in text
    assert not WRITE.search(" ".join(str(j["permissions"]) for j in workflow["jobs"].values()))
    # The SHAs reach the shell through env, never spliced into the script.
    for step in _steps(workflow):
        assert "${{" not in step.get("run", ""), step.get("name")
    run = " ".join(step.get("run", "") for step in _steps(workflow))
    assert 'nox -s ab -- --base "$BASE_SHA" --candidate "$HEAD_SHA"' in run
    checkout = next(s for s in _steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def test_perf_comment_never_checks_out_the_pull_request() -> None:
    workflow = _load("perf-comment.yml")
    assert set(workflow["on"]) == {"workflow_run"}
    assert workflow["on"]["workflow_run"]["workflows"] == ["perf-pr"]
    steps = _steps(workflow)
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts, "perf-comment must check out the default branch's code"
    for step in checkouts:
        assert step["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    text = (WORKFLOWS / "perf-comment.yml").read_text()
    for untrusted in ("head_sha }}\n", "head_branch", "pull_request.head", "refs/pull"):
        assert not any(untrusted in str(s.get("with", {})) for s in checkouts), untrusted
    for step in steps:
        assert "${{" not in step.get("run", ""), step.get("name")
    assert "secrets." not in text
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {
        "actions": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"


def test_vegeta_is_checksum_verified() -> None:
    for name in ("perf-pr.yml", "perf-baseline.yml"):
        run = "\n".join(step.get("run", "") for step in _steps(_load(name)))
        assert "vegeta_${VEGETA_VERSION}_linux_amd64.tar.gz" in run
        assert 'sha256sum --check --ignore-missing "$sums"' in run
        # the check comes before the binary is unpacked
        assert run.index("sha256sum --check") < run.index("tar -xzf")


def test_baseline_artifact_is_kept_90_days() -> None:
    steps = _steps(_load("perf-baseline.yml"))
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "perf-baseline"
    assert upload["with"]["retention-days"] == 90
    # the profile the history of main is kept in (perf.toml [history]), nothing else
    profile = load_perf_config().history.profile
    assert any(step.get("run") == f"nox -s baseline -- --profile {profile}" for step in steps)


def test_perf_baseline_records_detects_and_files_issues_with_least_privilege() -> None:
    workflow = _load("perf-baseline.yml")
    jobs = workflow["jobs"]
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["cancel-in-progress"] is False  # never drop a row
    assert jobs["baseline"]["permissions"] == {"contents": "read"}
    assert jobs["record"]["permissions"] == {"contents": "write"}
    assert jobs["record"]["needs"] == "baseline"
    assert jobs["issues"]["permissions"] == {"contents": "read", "issues": "write"}
    assert jobs["issues"]["needs"] == "record"

    def runs(job: str) -> str:
        return " ".join(s.get("run", "") for s in jobs[job]["steps"])

    assert "nox -s history -- record reports/baseline/results.json" in runs("record")
    assert '--commit "$GITHUB_SHA"' in runs("record")
    assert "--token-env GITHUB_TOKEN" in runs("record")  # the token never on a command line
    assert "nox -s history -- issues --store perf-data" in runs("issues")
    data = [s for s in jobs["issues"]["steps"] if s.get("with", {}).get("ref") == "perf-data"]
    assert len(data) == 1
    for step in _steps(workflow):
        assert "${{" not in step.get("run", ""), step.get("name")


def test_ci_jobs_each_call_one_nox_session() -> None:
    jobs = _load("ci.yml")["jobs"]
    for name in ("lint", "tests"):
        runs = [s["run"] for s in jobs[name]["steps"] if "run" in s and "nox -s" in s["run"]]
        assert runs == [f"nox -s {name}"]
