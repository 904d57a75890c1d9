"""``perfci sweep capacity``'s options: variants and settings named or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli import build_parser
from ci.cli.capacity import _env_pairs, _variant
from ci.errors import ConfigError
from ci.experiments.capacity import Variant


def test_variants_with_settings_or_another_checkout(tmp_path: Path) -> None:
    assert _variant("old:SEARCH_BATCH_MAX_WAIT_MS=5,SEARCH_EMBED_THREADS=2") == Variant(
        "old", (("SEARCH_BATCH_MAX_WAIT_MS", "5"), ("SEARCH_EMBED_THREADS", "2"))
    )
    (tmp_path / "service").mkdir()
    assert _variant(f"base@{tmp_path}") == Variant("base", (), str(tmp_path.resolve()))
    assert _variant(f"base@{tmp_path}:SEARCH_L1_ENABLED=0").env == (("SEARCH_L1_ENABLED", "0"),)


@pytest.mark.parametrize("text", ["old", "old@", "@x:SEARCH_A=1", "old:DATABASE_URL=x"])
def test_bad_variants_are_named(text: str) -> None:
    with pytest.raises(ConfigError, match="--variant"):
        _variant(text)


def test_a_checkout_without_a_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no service/ folder"):
        _variant(f"base@{tmp_path}")


def test_env_needs_search_settings() -> None:
    assert _env_pairs(["SEARCH_EMBED_THREADS=2"]) == [("SEARCH_EMBED_THREADS", "2")]
    with pytest.raises(ConfigError, match="--env"):
        _env_pairs(["REDIS_URL=redis://elsewhere"])


def test_the_command_parses_with_its_defaults() -> None:
    args = build_parser().parse_args(["sweep", "capacity"])
    assert (args.docs, args.embedder, args.repeat, args.start_rate) == (20_000, "minilm", 3, 50)
    assert (args.p99_ms, args.step_s, args.mix) == (100.0, 10.0, None)
