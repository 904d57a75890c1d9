"""k6-operator manifests: the same argv as the local launcher, and a schema check."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ci.cli import main
from ci.measure import k6, operator, segments

SCHEMA = Path(__file__).resolve().parents[2] / "resources" / "k6-operator" / "testrun.schema.json"


def _run(n: int) -> operator.OperatorRun:
    return operator.OperatorRun("perfci-arrival-rate", "perf", n, {"BASE_URL": "http://s:8000"})


@pytest.mark.parametrize("n", [1, 2, 5])
def test_testrun_runner_command_equals_the_local_argv(n: int) -> None:
    testrun = operator.render(_run(n), b"tar")[2]
    spec = segments.RunnerSpec(f"/test/{operator.ARCHIVE}", n, "perfci-arrival-rate")
    for i in range(1, n + 1):
        local = segments.runner_argv(spec, i, address="0.0.0.0:6565", raw_path=operator.RAW_PATH)
        assert operator.operator_command(testrun, i) == local


def test_manifests_pass_the_testrun_schema(tmp_path: Path) -> None:
    objects = operator.render(_run(3), b"tar")
    assert [o["kind"] for o in objects] == ["ConfigMap", "PersistentVolumeClaim", "TestRun"]
    doc = tmp_path / "testrun.json"
    doc.write_text(json.dumps(objects[2]))
    check = Path(sys.executable).parent / "check-jsonschema"
    ok = subprocess.run([str(check), "--schemafile", str(SCHEMA), str(doc)], capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the schema is closed: a misspelt field fails
    bad = json.loads(doc.read_text())
    bad["spec"]["paralelism"] = 3
    doc.write_text(json.dumps(bad))
    fails = subprocess.run([str(check), "--schemafile", str(SCHEMA), str(doc)], capture_output=True)
    assert fails.returncode == 1
    claim = objects[1]["metadata"]["name"]
    runner = objects[2]["spec"]["runner"]
    assert runner["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    assert {"name": "K6_CSV_TIME_FORMAT", "value": "unix_micro"} in runner["env"]


def test_archive_holds_the_script_and_its_imports(tmp_path: Path) -> None:
    script = k6.SCENARIOS_DIR / "arrival_rate.js"
    data = operator.archive(k6.find_k6(), script, {"TIME_SCALE": "0.005"}, tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
    assert data[:8] == (tmp_path / "a.tar").read_bytes()[:8]
    assert any(n.endswith("arrival_rate.js") for n in names)
    assert any(n.endswith("lib/shapes.js") for n in names)


def test_cli_dry_run_prints_the_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "run", "--profile", "test", "--scenario", "arrival_rate", "--runners", "2",
        "--k6-operator", "--namespace", "perf", "--target", "http://search.perf.svc:8000",
        "--dry-run",
    ])  # fmt: skip
    assert code == 0
    docs = [json.loads(d) for d in capsys.readouterr().out.split("---\n") if d.strip()]
    testrun = docs[2]
    assert testrun["spec"]["parallelism"] == 2
    env = {e["name"]: e.get("value") for e in testrun["spec"]["runner"]["env"]}
    assert env["BASE_URL"] == "http://search.perf.svc:8000"


def test_k6_operator_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "test", "--runners", "2", "--k6-operator"]) == 2
    assert "--k6-operator needs --target" in capsys.readouterr().err
