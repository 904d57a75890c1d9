"""The micro-benchmarks as stored in verdict.json: validated when built and when decoded."""

from __future__ import annotations

import math

import msgspec
import pytest

from ci.results.micro import MicroRound, MicroRun
from tests.ci.judge.micro_factory import micro_run


def test_a_run_round_trips_through_json() -> None:
    run = micro_run(0.1, rounds=4, missing={"parse_search": "base"})
    again = msgspec.json.decode(msgspec.json.encode(run), type=MicroRun, strict=True)
    assert again == run
    assert again.figures("parse_search", "base") == (None,) * 4
    assert all(x is not None for x in again.figures("parse_search", "candidate"))


def _round(base: tuple[float | None, ...], candidate: tuple[float | None, ...]) -> MicroRound:
    return MicroRound(first="base", base=base, candidate=candidate)


@pytest.mark.parametrize(
    ("cases", "rounds", "message"),
    [
        ((), (_round((), ()),), r"cases = \[\]: must be distinct and not empty"),
        (("a", "a"), (_round((1.0, 1.0), (1.0, 1.0)),), r"cases = \['a', 'a'\]"),
        (("a",), (), r"rounds: a micro-benchmark run has at least one round"),
        (("a", "b"), (_round((1e-6,), (1e-6, 1e-6)),), r"rounds\[0\]\.base has 1 figures for 2"),
        (("a",), (_round((1e-6,), (0.0,)),), r"rounds\[0\]\.candidate a = 0\.0: must be > 0 s"),
        (("a",), (_round((math.inf,), (1e-6,)),), r"rounds\[0\]\.base a = inf"),
    ],
)
def test_impossible_figures_are_refused(
    cases: tuple[str, ...], rounds: tuple[MicroRound, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MicroRun(cases=cases, rounds=rounds)


def test_an_unknown_side_or_field_is_refused() -> None:
    good = msgspec.to_builtins(micro_run(rounds=2))
    good["rounds"][0]["first"] = "other"
    with pytest.raises(msgspec.ValidationError, match="first"):
        msgspec.convert(good, MicroRun)
    extra = msgspec.to_builtins(micro_run(rounds=2))
    extra["seconds"] = 1
    with pytest.raises(msgspec.ValidationError, match="seconds"):
        msgspec.convert(extra, MicroRun)
