"""The Jinja2 environments every template renders in.

Markdown templates run with autoescape off, so every interpolated value must pass through
the ``md`` filter (or be a number formatted here): a ``finalize`` hook refuses any plain
string that reaches the output, so forgetting ``|md`` fails loudly instead of opening a
hole. HTML templates run with Jinja2 autoescape on.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ci.errors import RenderError
from ci.render import formatting
from ci.render.escape import md, md_link, safe_url

TEMPLATES = Path(__file__).parent / "templates"


def _refuse_unescaped(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Markup):
        raise RenderError(
            f"unescaped text reached a Markdown template: {value[:60]!r}; use the md filter"
        )
    if isinstance(value, float):
        raise RenderError(f"unformatted number {value!r} reached a Markdown template")
    return value


@functools.cache
def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_refuse_unescaped if markdown else None,
    )
    env.filters.update(
        md=md,
        md_link=md_link,
        safe_url=safe_url,
        metric_label=formatting.metric_label,
        gate_label=formatting.gate_label,
        value=formatting.value,
    )
    return env


def render_template(name: str, **values: Any) -> str:
    markdown = name.endswith(".md.j2")
    try:
        return _environment(markdown).get_template(name).render(**values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc
