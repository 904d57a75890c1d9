"""Load profiles of ``perfci run``: which scenarios, how long, how hard. Defined here only.

Wall times on this 2-core machine, stack start and seeding included (measured for test and
smoke; the others are the sum of their scaled shapes):

=========  =====================================  ==========  ==========  ================
profile    scenarios                              time scale  corpus      wall time
=========  =====================================  ==========  ==========  ================
test       ramp sse connections arrival vegeta    0.005       5k hash     ~50 s
smoke      test's + spike                         0.02        5k hash     ~85 s
pr         smoke's                                0.1         20k minilm  ~5 min + seeding
full       pr's + sustained                       1.0         20k minilm  ~1 h 40 min
soak       sustained                              1.0         20k minilm  ~1 h
=========  =====================================  ==========  ==========  ================
"""

from __future__ import annotations

from dataclasses import dataclass

from ci.errors import RunError

# Scenario name -> k6 script under scenarios/ ("vegeta" runs the vegeta binary when present,
# else constant_rate.js, the same attack through k6's constant-arrival-rate executor).
SCENARIO_SCRIPTS = {
    "ramp": "ramp.js",
    "spike": "spike.js",
    "sse": "sse.js",
    "connections": "connections.js",
    "arrival_rate": "arrival_rate.js",
    "sustained": "sustained.js",
    "saturate": "saturate.js",  # closed loop without think time (perfci sweep pool|workers)
    "vegeta": "constant_rate.js",
}
EMBEDDERS = ("hash", "minilm")


@dataclass(frozen=True, slots=True)
class Profile:
    """One load profile; every field becomes a k6 environment variable or a seed option."""

    name: str
    description: str
    scenarios: tuple[str, ...]
    time_scale: float  # TIME_SCALE: 1.0 = full length
    vu_scale: float  # VU_SCALE: multiplies VU counts and arrival rates
    docs: int  # corpus size
    embedder: str  # hash | minilm
    connections: int  # CONNECTIONS held open by the connections scenario
    hold_s: float  # HOLD_S: idle time between requests on a held connection
    sse_streams: int  # SSE_STREAMS: concurrent streams at the SSE peak
    sse_k: int  # SSE_K
    rate: float  # RATE: arrival rate and vegeta attack rate, per second
    attack_s: float  # ATTACK_S: vegeta attack duration (not time-scaled)
    write_fraction: float = 0.02  # WRITE_FRACTION: iterations that ingest + delete
    # Memory verdicts need this many seconds of samples after warm-up: over shorter windows
    # the caches (L1 up to 10,000 entries, pools) are still filling, which is bounded growth,
    # not a leak. Only the soak (and the leak test) run that long.
    memory_window_s: float = 300.0

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenarios if s not in SCENARIO_SCRIPTS]
        assert not unknown, f"profile {self.name}: unknown scenarios {unknown}"
        assert self.embedder in EMBEDDERS, f"profile {self.name}: embedder {self.embedder!r}"
        assert self.time_scale > 0, f"profile {self.name}: time_scale {self.time_scale}"
        assert self.vu_scale > 0, f"profile {self.name}: vu_scale {self.vu_scale}"

    def k6_env(self) -> dict[str, str]:
        return {
            "TIME_SCALE": repr(self.time_scale),
            "VU_SCALE": repr(self.vu_scale),
            "CONNECTIONS": str(self.connections),
            "HOLD_S": repr(self.hold_s),
            "SSE_STREAMS": str(self.sse_streams),
            "SSE_K": str(self.sse_k),
            "RATE": repr(self.rate),
            "ATTACK_S": repr(self.attack_s),
            "WRITE_FRACTION": repr(self.write_fraction),
        }

    def settings(self) -> dict[str, str | int | float]:
        """The profile as results.json ``run.settings`` (typed values)."""
        return {
            "time_scale": self.time_scale,
            "vu_scale": self.vu_scale,
            "docs": self.docs,
            "embedder": self.embedder,
            "connections": self.connections,
            "hold_s": self.hold_s,
            "sse_streams": self.sse_streams,
            "sse_k": self.sse_k,
            "rate": self.rate,
            "attack_s": self.attack_s,
            "write_fraction": self.write_fraction,
        }


_SMOKE = ("ramp", "spike", "sse", "connections", "arrival_rate", "vegeta")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="test",
            description="seconds-long shapes for the test suite",
            scenarios=("ramp", "sse", "connections", "arrival_rate", "vegeta"),
            time_scale=0.005,
            vu_scale=0.2,
            docs=5000,
            embedder="hash",
            connections=200,
            hold_s=1.5,
            sse_streams=40,
            sse_k=200,
            rate=40,
            attack_s=3,
        ),
        Profile(
            name="smoke",
            description="every short scenario at full concurrency, in under 3 minutes",
            scenarios=_SMOKE,
            time_scale=0.02,
            vu_scale=1.0,
            docs=5000,
            embedder="hash",
            connections=1000,
            hold_s=4,
            sse_streams=100,
            sse_k=500,
            rate=60,  # 120/s at the ramping peak: about what 2 shared cores sustain
            attack_s=10,
        ),
        Profile(
            name="pr",
            description="main's history (perf-baseline): real embedder, minutes-long shapes",
            scenarios=_SMOKE,
            time_scale=0.1,
            vu_scale=1.0,
            docs=20_000,
            embedder="minilm",
            connections=1000,
            hold_s=5,
            sse_streams=200,
            sse_k=500,
            rate=100,
            attack_s=30,
        ),
        Profile(
            name="full",
            description="every scenario at full length, on demand",
            scenarios=(*_SMOKE, "sustained"),
            time_scale=1.0,
            vu_scale=1.0,
            docs=20_000,
            embedder="minilm",
            connections=1000,
            hold_s=5,
            sse_streams=200,
            sse_k=500,
            rate=100,
            attack_s=120,
        ),
        Profile(
            name="soak",
            description="one hour of constant load, for leaks and drift",
            scenarios=("sustained",),
            time_scale=1.0,
            vu_scale=1.0,
            docs=20_000,
            embedder="minilm",
            connections=1000,
            hold_s=5,
            sse_streams=200,
            sse_k=500,
            rate=100,
            attack_s=120,
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise RunError(f"profile {name!r} is unknown: expected one of {known}") from None


def check_scenarios(names: tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``--scenario`` names; keep their order, drop repeats."""
    unknown = [n for n in names if n not in SCENARIO_SCRIPTS]
    if unknown:
        known = ", ".join(SCENARIO_SCRIPTS)
        raise RunError(f"scenario {unknown[0]!r} is unknown: expected one of {known}")
    return tuple(dict.fromkeys(names))
