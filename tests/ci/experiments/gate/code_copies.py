"""A side's worktree for tests: a copy of this repository's ``service/`` with edits applied."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
#: zoo/stdlib-json.patch as an edit: a search answer's body encoded by the standard library
STDLIB_JSON = {
    "service/http/responses.py": (
        "        return orjson.dumps(content)\n",
        "        import json\n\n"
        '        return json.dumps(content, separators=(",", ":")).encode()\n',
    )
}


def code_copy(dest: Path, edits: Mapping[str, tuple[str, str] | None] | None = None) -> Path:
    """``dest`` holding a copy of ``service/``, each edited file's ``old`` text replaced by
    ``new`` (None: the file removed); returns ``dest``, the side's code root."""
    shutil.copytree(
        REPO / "service", dest / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    for path, edit in (edits or {}).items():
        target = dest / path
        if edit is None:
            target.unlink()
            continue
        old, new = edit
        text = target.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{path}: {old!r} is not there once"
        target.write_text(text.replace(old, new), encoding="utf-8")
    return dest
