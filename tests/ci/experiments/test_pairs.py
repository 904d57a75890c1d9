"""ci.pairs: the interleaved order and the real runner (with a stand-in ``perfci run``)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from ci.errors import ConfigError, RunError
from ci.experiments import pairs
from tests.ci.conftest import ResultsDictFactory


def test_order_is_random_seedable_and_recorded(tmp_path: Path) -> None:
    checkouts = {k: pairs.Checkout(k, "HEAD", "0" * 40, tmp_path) for k in ("base", "cand")}

    def order(seed: int) -> tuple[tuple[str, ...], ...]:
        calls: list[pairs.RunSpec] = []

        def runner(spec: pairs.RunSpec) -> Path:
            calls.append(spec)
            return spec.out_dir / "results.json"

        paired = pairs.run_pairs(
            checkouts,
            8,
            "test",
            out_dir=tmp_path / "out",
            scratch=tmp_path,
            runner=runner,
            rng=random.Random(seed),
        )
        assert [s.label for s in calls] == [k for pair in paired.order for k in pair]
        assert [s.pair for s in calls] == [i // 2 for i in range(16)]
        assert len(paired.files["base"]) == len(paired.files["cand"]) == 8
        assert len({s.env["PERFCI_HOME"] for s in calls}) == 16
        return paired.order

    assert order(42) == order(42)
    assert order(42) != order(43)
    assert {pair[0] for pair in order(42)} == {"base", "cand"}


def test_zero_pairs_is_refused(tmp_path: Path) -> None:
    checkouts = {"base": pairs.Checkout("base", "HEAD", "0" * 40, tmp_path)}
    with pytest.raises(ConfigError, match="--pairs 0"):
        pairs.run_pairs(
            checkouts,
            0,
            "test",
            out_dir=tmp_path,
            scratch=tmp_path,
            runner=lambda s: s.out_dir,
            rng=random.Random(),
        )


def test_fresh_stack_env_has_three_distinct_ports(tmp_path: Path) -> None:
    env = pairs.fresh_stack_env(tmp_path / "home")
    ports = {env[k] for k in ("PERFCI_PG_PORT", "PERFCI_REDIS_PORT", "PERFCI_SERVICE_PORT")}
    assert len(ports) == 3
    assert env["PERFCI_HOME"] == str(tmp_path / "home")


def test_subprocess_runner_runs_the_checkouts_own_code(
    tmp_path: Path, results_dict: ResultsDictFactory
) -> None:
    checkout = tmp_path / "rev"
    (checkout / "ci").mkdir(parents=True)
    (checkout / "ci" / "__init__.py").write_text("")
    template = tmp_path / "template.json"
    template.write_text(json.dumps(results_dict("from-checkout")))
    # A stand-in `perfci run`: records what it was given, writes <out>/<id>/results.json.
    (checkout / "ci" / "cli.py").write_text(
        "import json, os, pathlib, shutil, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "(out / 'r1').mkdir(parents=True)\n"
        f"shutil.copy({str(template)!r}, out / 'r1' / 'results.json')\n"
        "keys = ('PERFCI_HOME', 'PERFCI_PG_PORT', 'PYTHONPATH', 'DATABASE_URL')\n"
        "info = {'argv': sys.argv[1:], 'cwd': os.getcwd(), 'file': __file__,\n"
        "        'env': {k: os.environ.get(k) for k in keys}}\n"
        "(out / 'info.json').write_text(json.dumps(info))\n"
    )
    env = pairs.fresh_stack_env(tmp_path / "home")
    spec = pairs.RunSpec("base", 0, checkout, "smoke", tmp_path / "out", env, ("sse", "ramp"))
    found = pairs.subprocess_runner(spec)
    assert found == tmp_path / "out" / "r1" / "results.json"
    info: dict[str, Any] = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["argv"] == [
        "run", "--profile", "smoke", "--out", str(tmp_path / "out"),
        "--scenario", "sse", "--scenario", "ramp",
    ]  # fmt: skip
    assert Path(info["file"]) == checkout / "ci" / "cli.py"
    assert Path(info["cwd"]) == checkout
    assert info["env"]["PYTHONPATH"] == str(checkout)
    assert info["env"]["PERFCI_HOME"] == str(tmp_path / "home")
    assert info["env"]["PERFCI_PG_PORT"] == env["PERFCI_PG_PORT"]


def test_subprocess_runner_names_a_failed_run(tmp_path: Path) -> None:
    checkout = tmp_path / "rev"
    (checkout / "ci").mkdir(parents=True)
    (checkout / "ci" / "__init__.py").write_text("")
    (checkout / "ci" / "cli.py").write_text("import sys\nprint('kaput')\nsys.exit(2)\n")
    spec = pairs.RunSpec("candidate", 2, checkout, "smoke", tmp_path / "out", {})
    with pytest.raises(RunError, match=r"candidate run 3 .* exited with code 2(.|\n)*kaput"):
        pairs.subprocess_runner(spec)
