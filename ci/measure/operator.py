"""k6-operator: the manifests of one distributed scenario, applied with ``kubectl``.

``render`` gives three objects:

- a ConfigMap holding the script as a ``k6 archive`` (``archive.tar``: the script, its
  ``lib/`` imports and data files in one file, as k6-operator mounts it at ``/test``);
- a PersistentVolumeClaim (ReadWriteMany) every runner writes its raw CSV to;
- the TestRun (``k6.io/v1alpha1``): ``parallelism`` N, ``spec.arguments`` the arguments
  every runner shares (:func:`ci.measure.segments.shared_args`), the environment of the
  scenario, and the volume. k6-operator adds the segment, ``--address``, ``--paused`` and
  the ``instance_id`` and ``testrun_name`` tags itself, in the order
  :func:`ci.measure.segments.runner_argv` builds them, so runner i of the TestRun runs what
  the local launcher's runner i runs (the golden test checks it with
  :func:`operator_command`).

Each runner names its file after its pod (``$(POD_NAME)``, which Kubernetes expands in a
container's arguments from the runner's environment). ``collect`` copies the files out
through a pod mounting the same claim; the merge finds each runner by its ``instance_id``
tag.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import RunError
from ci.measure import segments

ARCHIVE = "archive.tar"
RESULTS_MOUNT = "/results"
RAW_PATH = f"{RESULTS_MOUNT}/$(POD_NAME).csv.gz"
RUNNER_IMAGE = "grafana/k6:1.1.0"  # the k6 version perfci runs locally


@dataclass(frozen=True, slots=True)
class OperatorRun:
    """One scenario on k6-operator."""

    name: str  # the TestRun's name (a DNS label)
    namespace: str
    runners: int
    env: Mapping[str, str]  # the scenario's __ENV (BASE_URL is the in-cluster --target)
    image: str = RUNNER_IMAGE
    storage: str = "1Gi"
    separate: bool = True  # one runner per node


def render(run: OperatorRun, archive: bytes) -> list[dict[str, Any]]:
    """The ConfigMap, the claim and the TestRun of ``run``, as Kubernetes objects."""
    meta = {"name": run.name, "namespace": run.namespace, "labels": {"app": "perfci"}}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "binaryData": {ARCHIVE: base64.b64encode(archive).decode()},
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {**meta, "name": f"{run.name}-results"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": run.storage}},
        },
    }
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted({**run.env, **segments.runner_env()}.items())
    ]
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    testrun = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": meta,
        "spec": {
            "parallelism": run.runners,
            "separate": run.separate,
            "script": {"configMap": {"name": run.name, "file": ARCHIVE}},
            "arguments": " ".join(segments.shared_args(RAW_PATH)),
            "runner": {
                "image": run.image,
                "env": env,
                "volumes": [
                    {
                        "name": "results",
                        "persistentVolumeClaim": {"claimName": f"{run.name}-results"},
                    }
                ],
                "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT}],
            },
        },
    }
    return [configmap, claim, testrun]


def operator_command(testrun: Mapping[str, Any], i: int) -> list[str]:
    """The command k6-operator gives runner ``i`` of ``testrun`` (its runner job's
    container), assembled as ``pkg/resources/jobs/runner.go`` does for a ConfigMap script."""
    spec = testrun["spec"]
    n = int(spec["parallelism"])
    command = ["k6", "run", "--quiet"]
    if n > 1:
        command += [
            f"--execution-segment={segments.segment(n, i)}",
            f"--execution-segment-sequence={segments.segment_sequence(n)}",
        ]
    command += str(spec.get("arguments", "")).split()
    command += [f"/test/{spec['script']['configMap']['file']}", "--address=0.0.0.0:6565"]
    command += ["--paused", "--tag", f"instance_id={i}"]
    command += ["--tag", f"testrun_name={testrun['metadata']['name']}"]
    return command


def archive(binary: Path, script: Path, env: Mapping[str, str], out: Path) -> bytes:
    """``k6 archive`` of ``script`` (its imports and opened files in one tar)."""
    proc = subprocess.run(
        [str(binary), "archive", "--include-system-env-vars=false", "-O", str(out), str(script)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RunError(f"k6 archive {script.name} exited {proc.returncode}: {proc.stderr[-800:]}")
    return out.read_bytes()


def to_yaml_stream(objects: list[dict[str, Any]]) -> str:
    """The objects as a YAML stream (JSON documents are YAML) that ``kubectl apply -f -``
    reads."""
    return "".join(f"---\n{json.dumps(o, indent=2)}\n" for o in objects)


# -- applying, waiting, collecting --------------------------------------------------------------


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    try:
        proc = subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise RunError("kubectl is not installed: --k6-operator needs it on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise RunError(f"kubectl {shlex.join(args)} took over {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise RunError(f"kubectl {shlex.join(args)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return proc.stdout


def apply_and_collect(
    run: OperatorRun, objects: list[dict[str, Any]], out_dir: Path, timeout_s: float
) -> tuple[Path, ...]:
    """Apply the manifests, wait for the TestRun to finish, copy every runner's file to
    ``out_dir`` through a pod that mounts the claim, and delete what was applied."""
    ns = ("-n", run.namespace)
    kubectl("apply", "-f", "-", stdin=to_yaml_stream(objects))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            stage = kubectl("get", "testrun", run.name, *ns, "-o", "jsonpath={.status.stage}")
            if stage.strip() in ("finished", "error"):
                break
            if time.monotonic() > deadline:
                raise RunError(f"TestRun {run.name}: stage {stage!r} after {timeout_s:.0f} s")
            time.sleep(5)
        if stage.strip() == "error":
            raise RunError(f"TestRun {run.name} ended in stage error (kubectl describe testrun)")
        reader = f"{run.name}-collect"
        kubectl("run", reader, *ns, "--restart=Never", "--image=busybox:1.36",
                "--overrides", json.dumps(_reader_overrides(run, reader)))  # fmt: skip
        kubectl("wait", f"pod/{reader}", *ns, "--for=condition=Ready", "--timeout=120s")
        names = kubectl("exec", reader, *ns, "--", "ls", RESULTS_MOUNT).split()
        files = []
        # pods are <testrun>-<i>-<suffix>: runner i's file goes to position i
        ours = [n for n in names if n.endswith(".csv.gz")]
        for fname in sorted(ours, key=lambda n: int(n[len(run.name) + 1 :].split("-")[0])):
            target = out_dir / f"{run.name}.{fname}"
            kubectl("cp", f"{run.namespace}/{reader}:{RESULTS_MOUNT}/{fname}", str(target))
            files.append(target)
        if len(files) != run.runners:
            raise RunError(f"TestRun {run.name}: {len(files)} runner files for {run.runners}")
        return tuple(files)
    finally:
        kubectl("delete", "pod", f"{run.name}-collect", *ns, "--ignore-not-found")
        kubectl("delete", "-f", "-", "--ignore-not-found", stdin=to_yaml_stream(objects))


def _reader_overrides(run: OperatorRun, reader: str) -> dict[str, Any]:
    return {
        "spec": {
            "containers": [
                {
                    "name": reader,
                    "image": "busybox:1.36",
                    "command": ["sleep", "600"],
                    "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT}],
                }
            ],
            "volumes": [
                {"name": "results", "persistentVolumeClaim": {"claimName": f"{run.name}-results"}}
            ],
        }
    }
