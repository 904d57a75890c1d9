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
    # The fork path: this job runs the pull request's code, so it never holds a write token.
    workflow = _load("perf-pr.yml")
    text = (WORKFLOWS / "perf-pr.yml").read_text()
    assert set(workflow["on"]) == {"pull_request"}  # never pull_request_target
    assert workflow["permissions"] == {}
    for job in workflow["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
    assert "secrets." not in text
    assert "github.token" not in text
    assert not WRITE.search(" ".join(str(j["permissions"]) for j in workflow["jobs"].values()))
    # Event values reach the shell through env, never spliced into the script.
    for step in _steps(workflow):
        assert "${{" not in step.get("run", ""), step.get("name")


def test_perf_pr_measures_the_merge_commit_through_perfci() -> None:
    steps = _steps(_load("perf-pr.yml"))
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["ref"] == "${{ github.ref }}"  # refs/pull/N/merge, fetched fresh
    assert checkout["with"]["fetch-depth"] == 2  # HEAD and both parents
    assert checkout["continue-on-error"] is True  # no merge ref: a neutral "cannot merge"
    gate = next(s for s in steps if s.get("name", "").startswith("Gate"))
    assert gate["env"]["CHECKOUT"] == "${{ steps.checkout.outcome }}"
    assert gate["env"]["PR_HEAD"] == "${{ github.event.pull_request.head.sha }}"
    # pr.json, the harness and the refs are perfci's: the workflow only calls it
    assert "nox -s pr -- --pr" in gate["run"]
    for shell_only in ("jq", "git worktree", "verdict.json", "pr.json", "grep"):
        assert shell_only not in gate["run"], shell_only
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["overwrite"] is True  # a re-run replaces its artifact
    assert upload["with"]["name"] == "perf-pr"
    assert upload["if"] == "${{ !cancelled() }}"  # a crashed gate still hands over pr.json


def test_perf_pr_caches_pip_embeddings_and_venvs() -> None:
    workflow = _load("perf-pr.yml")
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    assert job["env"]["PERFCI_CACHE_DIR"] == "${{ github.workspace }}/.cache/perfci/embeddings"
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses.count("actions/cache/restore") == 2
    assert uses.count("actions/cache/save") == 2
    paths = {s["with"]["path"] for s in steps if "actions/cache/" in s.get("uses", "")}
    assert paths == {".cache/perfci/embeddings", ".perfci/venvs"}
    # perf-baseline (main) saves the embeddings under the same prefix: PRs restore them
    baseline = "\n".join(str(s.get("with", {})) for s in _steps(_load("perf-baseline.yml")))
    assert "perfci-embeddings-${{ runner.os }}-" in baseline


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
        "checks": "write",
        "pull-requests": "write",
    }
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"


def test_perf_comment_starts_and_ends_the_check_on_every_run() -> None:
    workflow = _load("perf-comment.yml")
    # requested: in progress at once; completed: whatever the conclusion (fail-safe)
    assert workflow["on"]["workflow_run"]["types"] == ["requested", "completed"]
    (job,) = workflow["jobs"].values()
    assert job["if"] == "github.event.workflow_run.event == 'pull_request'"
    assert "conclusion" not in job["if"]  # a crashed, cancelled or timed-out run is handled
    steps = job["steps"]
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["continue-on-error"] is True  # a missing artifact fails the check instead
    assert "conclusion" not in download["if"]
    post = steps[-1]
    assert "if" not in post
    assert post["run"].startswith('perfci comment --event "$GITHUB_EVENT_PATH"')
    assert post["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


def test_no_workflow_checks_out_pr_code_with_a_write_token() -> None:
    for name in NAMES:
        workflow = _load(name)
        assert "pull_request_target" not in workflow["on"], name
        writes = any(
            WRITE.search(str(job.get("permissions", {}))) for job in workflow["jobs"].values()
        )
        if "pull_request" in workflow["on"]:
            assert not writes, f"{name} runs on pull_request with a write permission"


def test_actionlint_is_clean() -> None:
    actionlint = shutil.which("actionlint")
    go = shutil.which("go")
    if actionlint is None and go is not None:  # `go install` puts it in $(go env GOPATH)/bin
        gopath = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True).stdout
        candidate = Path(gopath.strip()) / "bin" / "actionlint"
        actionlint = str(candidate) if candidate.exists() else None
    if actionlint is None:
        pytest.skip("actionlint is not installed (nox -s lint installs it when Go is present)")
    proc = subprocess.run([actionlint, *map(str, FILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_workflow_downloads_vegeta() -> None:
    # the gate never runs vegeta, and the baseline session builds the pinned release with the
    # runner's Go (noxfile.py, VEGETA): one version, one source
    for name in ("perf-pr.yml", "perf-baseline.yml"):
        for step in _steps(_load(name)):
            assert "vegeta" not in step.get("run", "") + step.get("name", ""), (name, step)


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


def test_perf_zoo_runs_weekly_one_nox_session_and_uploads_the_table() -> None:
    workflow = _load("perf-zoo.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    runs = [s["run"] for s in job["steps"] if "nox -s" in s.get("run", "")]
    assert runs == ["nox -s zoo"]
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-"))
    assert upload["with"]["path"] == "reports/zoo/"
    assert upload["if"] == "${{ !cancelled() }}"  # a mismatch fails the job, the table stays
    for step in job["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_ci_jobs_each_call_one_nox_session() -> None:
    jobs = _load("ci.yml")["jobs"]
    for name in ("lint", "tests"):
        runs = [s["run"] for s in jobs[name]["steps"] if "run" in s and "nox -s" in s["run"]]
        assert runs == [f"nox -s {name}"]


def test_one_pin_per_action_across_the_workflows() -> None:
    # Checked against the actions' own tags (v7.0.1, v7.0.0, v8.0.1, v6.1.0): one release each.
    pins: dict[str, set[str]] = {}
    for name in NAMES:
        for line in (WORKFLOWS / name).read_text().splitlines():
            found = re.search(r"uses: ([\w./-]+)@([0-9a-f]{40}) # (v[\d.]+)$", line)
            if found:
                pins.setdefault(found.group(1), set()).add(f"{found.group(2)} {found.group(3)}")
    assert pins, "no pinned actions found"
    for action, versions in pins.items():
        assert len(versions) == 1, f"{action} pinned to several commits: {sorted(versions)}"


def _gate_script() -> str:
    step = next(s for s in _steps(_load("perf-pr.yml")) if s.get("name", "").startswith("Gate"))
    return str(step["run"])


@pytest.mark.parametrize("nox_exit", [0, 2])
def test_the_gate_step_hands_the_pull_request_to_perfci(tmp_path: Path, nox_exit: int) -> None:
    # perfci exits 0 whenever it wrote a verdict or an untested pr.json, 2 when it reached
    # neither: the job is red exactly when there is no verdict
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "nox-calls"
    (fake_bin / "nox").write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$@" > "{calls}"\nexit {nox_exit}\n'
    )
    (fake_bin / "nox").chmod(0o755)
    env = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "RUNNER_TEMP": str(tmp_path),
        "REPORT": str(tmp_path / "report"),
        "CHECKOUT": "success",
        "PR_NUMBER": "17",
        "PR_HEAD": "a" * 40,
        "RUN_ID": "123",
        "RUN_ATTEMPT": "2",
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", _gate_script()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == nox_exit, proc.stdout + proc.stderr
    assert calls.read_text().splitlines() == [
        "-s", "pr", "--", "--pr", "17", "--pr-head", "a" * 40, "--run-id", "123",
        "--run-attempt", "2", "--merge-checkout", "success", "--out", str(tmp_path / "report"),
    ]  # fmt: skip
