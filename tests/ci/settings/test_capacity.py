from __future__ import annotations

from pathlib import Path

import pytest

from ci.errors import ConfigError
from ci.settings import load_perf_config, parse_perf_config
from ci.settings.capacity import CapacitySettings, parse_capacity


def test_the_repository_names_its_reference_service() -> None:
    assert load_perf_config().capacity.reference_app == "benchmarks.reference_service:create_app"


def test_a_file_without_the_table_takes_the_repository_value(tmp_path: Path) -> None:
    path = tmp_path / "perf.toml"
    path.write_text("[history]\n")
    assert load_perf_config(path).capacity == load_perf_config().capacity
    assert parse_capacity({}) == CapacitySettings(reference_app=None)


def test_a_file_may_name_another_reference(tmp_path: Path) -> None:
    path = tmp_path / "perf.toml"
    path.write_text('[capacity]\nreference_app = "mine.app:build"\n')
    assert load_perf_config(path).capacity.reference_app == "mine.app:build"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"reference_app": "benchmarks.reference_service"}, "module.path:function"),
        ({"reference_app": "python -m x:y"}, "module.path:function"),
        ({"reference_app": 3}, "must be a string"),
        ({"reference_command": "x:y"}, "unknown key capacity.reference_command"),
    ],
)
def test_bad_values_are_named(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_perf_config({"capacity": table}, sla_defaults=load_perf_config().sla)
