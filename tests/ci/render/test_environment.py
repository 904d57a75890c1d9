"""ci.render.environment: the Markdown environment refuses text that skipped escaping."""

from __future__ import annotations

import pytest

import ci.render.environment
from ci.errors import RenderError


def test_unescaped_string_in_markdown_template_is_refused() -> None:
    env = ci.render.environment._environment(True)
    template = env.from_string("{{ raw }}")
    with pytest.raises(RenderError, match="unescaped text reached a Markdown template"):
        template.render(raw="<b>")
    assert env.from_string("{{ raw|md }}").render(raw="<b>") == "&lt;b&gt;"


def test_unformatted_float_in_markdown_template_is_refused() -> None:
    env = ci.render.environment._environment(True)
    with pytest.raises(RenderError, match=r"unformatted number 0\.5"):
        env.from_string("{{ x }}").render(x=0.5)
    assert env.from_string("{{ 'latency_p95'|value(x) }}").render(x=12.34) == "12.3 ms"
