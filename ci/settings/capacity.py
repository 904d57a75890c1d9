"""``perf.toml [capacity]``: what ``perfci sweep capacity`` measures the service against.

``reference_app`` is the straightforward implementation's ASGI factory
(``module.path:function``), run from the checkout under the same server and options as the
service. A ``--config`` file that leaves it out takes the repository's value. ``ci`` names
the reference only here, as configuration: it runs it as a program of its own and never
imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ci.errors import ConfigError

CAPACITY_KEYS = ("reference_app",)
_FACTORY = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def check_app_factory(where: str, value: str) -> str:
    """``value`` if it reads ``module.path:function``; else a ConfigError naming ``where``."""
    if not _FACTORY.fullmatch(value):
        raise ConfigError(f"{where} = {value!r}: must be an ASGI factory, module.path:function")
    return value


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    reference_app: str | None = None

    def __post_init__(self) -> None:
        if self.reference_app is not None:
            check_app_factory("capacity.reference_app", self.reference_app)


def parse_capacity(
    data: Mapping[str, object], defaults: CapacitySettings | None = None
) -> CapacitySettings:
    """Build :class:`CapacitySettings` from the ``[capacity]`` table of a parsed document;
    a key it leaves out takes its value from ``defaults`` (the repository's file)."""
    for key in data:
        if key not in CAPACITY_KEYS:
            raise ConfigError(f"unknown key capacity.{key} (known: {', '.join(CAPACITY_KEYS)})")
    app = data.get("reference_app", defaults.reference_app if defaults else None)
    if app is not None and not isinstance(app, str):
        raise ConfigError(f"capacity.reference_app = {app!r}: must be a string")
    return CapacitySettings(reference_app=app)
