"""ci.profiles: the profiles, and that the runner's variables are the ones the scripts read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ci.errors import RunError
from ci.measure import profiles
from ci.settings import repo_sla

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def test_every_variable_the_runner_sets_is_read_by_lib_config() -> None:
    config = (SCENARIOS / "lib" / "config.js").read_text()
    read = set(re.findall(r"num\('([A-Z_]+)'", config)) | set(
        re.findall(r"__ENV\.([A-Z_]+)", config)
    )
    for profile in profiles.PROFILES.values():
        assert set(profile.k6_env()) <= read, profile.name
    assert {"BASE_URL", "QUERY_LOG", "TARGETS"} <= read


def test_the_sla_reaches_the_scripts_from_perf_toml_only() -> None:
    config = (SCENARIOS / "lib" / "config.js").read_text()
    required = set(re.findall(r"'(PERFCI_SLA_[A-Z0-9_]+)'", config))
    assert required, "lib/config.js reads no PERFCI_SLA_* variable"
    assert required <= set(repo_sla().k6_env())
    for script in SCENARIOS.glob("*.js"):
        text = script.read_text()
        assert not re.search(r"(p\(9[59]\)|rate)<[0-9]", text), f"{script.name}: a literal SLA"


def test_only_lib_config_reads_the_environment() -> None:
    readers = sorted(
        str(p.relative_to(SCENARIOS)) for p in SCENARIOS.rglob("*.js") if "__ENV" in p.read_text()
    )
    assert readers == ["lib/config.js"]


def test_every_scenario_script_exists() -> None:
    for script in profiles.SCENARIO_SCRIPTS.values():
        assert (SCENARIOS / script).is_file(), script


def test_unknown_profile_and_scenario_are_named() -> None:
    with pytest.raises(RunError, match="profile 'huge' is unknown"):
        profiles.get_profile("huge")
    with pytest.raises(RunError, match="scenario 'soak' is unknown"):
        profiles.check_scenarios(("ramp", "soak"))
    assert profiles.check_scenarios(("sse", "ramp", "sse")) == ("sse", "ramp")


def test_profiles_grow_in_length() -> None:
    scales = [profiles.PROFILES[n].time_scale for n in ("test", "smoke", "pr", "full")]
    assert scales == sorted(scales)
    assert profiles.PROFILES["soak"].scenarios == ("sustained",)
