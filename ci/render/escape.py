"""Escaping of untrusted text for GitHub Markdown.

Everything that comes from a pull request or a result file (branch names, titles, scenario
names, error text, settings values) is untrusted: it must not be able to break out of a
table cell, open HTML, form links or images, or ping people and teams.
"""

from __future__ import annotations

import re
import urllib.parse

from markupsafe import Markup

MAX_TEXT = 200
ELLIPSIS = "\u2026"
ZERO_WIDTH_SPACE = "\u200b"

# Markdown punctuation that can start or end a construct; escaped with a backslash.
_MD_PUNCT = re.compile(r"([\\`*_\[\]()#|!~{}+\-.:])")
# Line and paragraph separators, tabs and other control characters collapse to a space.
_SPACE = re.compile(r"[\s\x00-\x1f\x7f\u2028\u2029\u0085]+")
# Bidirectional overrides can make text read differently from what it is.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def md(value: object, limit: int = MAX_TEXT) -> Markup:
    """Escape ``value`` for use anywhere in a Markdown line, table cell included.

    Newlines collapse to one space; text longer than ``limit`` is cut with an ellipsis;
    ``<``, ``>`` and ``&`` become entities (safe in Markdown and in raw HTML blocks);
    Markdown punctuation is backslash-escaped; ``@`` is followed by a zero-width space
    so that ``@org/team`` never notifies anyone.
    """
    text = "" if value is None else str(value)
    text = _BIDI.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + ELLIPSIS
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    text = text.replace("@", "@" + ZERO_WIDTH_SPACE)
    return Markup(text)


def safe_url(url: str | None) -> str | None:
    """Return ``url`` if it is an absolute http(s) URL, percent-encoding characters that
    could end a Markdown link or an HTML attribute; otherwise ``None``."""
    if not url or len(url) > 2000:
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    quoted = urllib.parse.quote(urllib.parse.urlunsplit(parts), safe="/:?#[]@!$&'*+,;=%~-._")
    # Parentheses and quotes are legal in URLs but end a Markdown link or an attribute.
    for ch, code in (("(", "%28"), (")", "%29"), ("'", "%27"), ('"', "%22")):
        quoted = quoted.replace(ch, code)
    return quoted


def md_link(text: object, url: str | None) -> Markup:
    """A Markdown link when ``url`` is a safe http(s) URL, else the escaped text alone."""
    target = safe_url(url)
    label = md(text)
    if target is None:
        return label
    return Markup(f"[{label}]({target})")
