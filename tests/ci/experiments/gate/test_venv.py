"""Service venvs: keyed by pyproject and Python version, reused when the key matches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.experiments.gate.venv import (
    MARKER,
    ensure_service_venv,
    project_dependencies,
    python_version,
    venv_key,
)

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
