"""README.md and docs/: a manual that opens with the set-up commands, and links that resolve.

- README is at most 300 lines, and its first code block is the two set-up commands (CI
  scripts and people copy them from there).
- Every relative link in README.md and docs/*.md names a file or folder that exists, and an
  ``#anchor`` into a Markdown file names one of its headings (GitHub's heading ids).
- A citation of a README section by title (``README, "How the gate decides"``) in perf.toml,
  scenarios/ or docs/ names a heading README has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 300
SETUP_COMMANDS = (
    "python3 -m pip install nox && python3 -m nox -s perf    "
    "# the performance job on the embedded stack\n"
    "python3 -m pip install nox && python3 -m nox -s tests   "
    "# the test suite (real PostgreSQL, Valkey, k6)\n"
)

_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`+[^`\n]*`+")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_CITATION = re.compile(r"README,\s+\"([^\"]+)\"")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def relative_links(text: str) -> Iterator[str]:
    """Targets of the Markdown links and images in ``text`` that point inside the repository."""
    for match in _LINK.finditer(_prose(text)):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # https:, mailto: ...
        yield target


def heading_ids(text: str) -> set[str]:
    """GitHub's ids of the headings of a Markdown text (lower case, punctuation dropped,
    spaces to hyphens; a repeated id gets ``-1``, ``-2`` ...)."""
    seen: dict[str, int] = {}
    ids = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # a link's text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def broken_links(path: Path) -> list[str]:
    """Each relative link of ``path`` that resolves to nothing, with the reason."""
    text = path.read_text(encoding="utf-8")
    out = []
    for target in relative_links(text):
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / file_part).resolve()
        if not dest.exists():
            out.append(f"{target}: no such file {dest}")
        elif (
            anchor
            and dest.suffix == ".md"
            and anchor not in heading_ids(dest.read_text(encoding="utf-8"))
        ):
            out.append(f"{target}: {dest.name} has no heading with id {anchor!r}")
    return out


def test_readme_is_at_most_300_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_readme_opens_with_the_two_setup_commands() -> None:
    first = _FENCE.search(README.read_text(encoding="utf-8"))
    assert first is not None, "README.md has no code block"
    assert first.group(0).startswith("```bash\n")
    assert first.group(2) == SETUP_COMMANDS


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def _citing_files() -> Iterator[Path]:
    yield ROOT / "perf.toml"
    yield from sorted((ROOT / "scenarios").rglob("*.js"))
    yield from DOCS


def test_cited_readme_sections_exist() -> None:
    ids = heading_ids(README.read_text(encoding="utf-8"))
    missing = []
    for path in _citing_files():
        text = re.sub(r"\s*\n\s*(?:#|//)?\s*", " ", path.read_text(encoding="utf-8"))
        for title in _CITATION.findall(text):
            if heading_ids(f"## {title}\n").isdisjoint(ids):
                missing.append(f"{path.relative_to(ROOT)}: README has no section {title!r}")
    assert missing == []


def test_the_checks_catch_a_broken_link_and_a_wrong_anchor(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A title, with `code`\n\n## A title, with code\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-title-with-code-1) [web](https://example.org/x)\n"
        "`[not a link](gone.md)`\n\n```\n[not a link](gone.md)\n```\n"
        "[gone](missing.md) [bad anchor](there.md#nowhere) [self](#nowhere-here)\n"
    )
    assert broken_links(page) == [
        f"missing.md: no such file {tmp_path / 'missing.md'}",
        "there.md#nowhere: there.md has no heading with id 'nowhere'",
        "#nowhere-here: page.md has no heading with id 'nowhere-here'",
    ]
