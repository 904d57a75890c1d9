"""Bulk-load a corpus through the service's own loader (``python -m service.db.loader``).

The loader runs in a subprocess with the service's settings: ci/ never imports service/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.errors import SeedError
from ci.seed.corpus import write_corpus
from ci.seed.querylog import write_query_log

LOADER_MODULE = "service.db.loader"
LEGACY_LOADER_MODULE = "service.loader"  # revisions from before the package split
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True, slots=True)
class SeedResult:
    corpus_path: Path
    query_log_path: Path
    docs: int
    seed: int
    corpus_hash: str
    loader: dict[str, Any]


def embedding_cache_dir() -> Path:
    """Shared by every run dir (each fresh stack has its own): ``PERFCI_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/perfci/embeddings`` or ``~/.cache/perfci/embeddings``. Files are keyed
    by corpus hash and model id, so sharing them is safe."""
    explicit = os.environ.get("PERFCI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perfci" / "embeddings"


def seed_corpus(
    run_dir: Path,
    database_url: str,
    docs: int,
    seed: int,
    service_env: dict[str, str],
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
    code_root: Path | None = None,
    python: Path | None = None,
) -> SeedResult:
    """Generate (or reuse) the corpus files and load them with ``python -m service.db.loader``
    (of ``code_root``'s checkout, run by ``python``: a venv's interpreter, default this one)."""
    progress(f"generating a corpus of {docs} documents (seed {seed})")
    corpus_path, corpus_hash = write_corpus(run_dir, docs, seed)
    query_log = write_query_log(run_dir, seed)
    env = dict(os.environ)
    env.update(service_env)
    env["DATABASE_URL"] = database_url
    root = code_root or PROJECT_ROOT
    if code_root is not None:
        env["PYTHONPATH"] = str(code_root)  # that revision's loader, not ours
    new_loader = (root / "service" / "db" / "loader.py").exists()
    cmd = [
        str(python) if python is not None else sys.executable,
        "-m",
        LOADER_MODULE if new_loader else LEGACY_LOADER_MODULE,
        "--corpus",
        str(corpus_path),
        "--cache-dir",
        str(embedding_cache_dir()),
    ]
    if force:
        cmd.append("--force")
    progress("embedding, loading (COPY) and indexing")
    proc = subprocess.run(cmd, env=env, cwd=root, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SeedError(f"loading the corpus failed (exit {proc.returncode}); see messages above")
    try:
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise SeedError(f"the loader printed no summary: {proc.stdout[-500:]!r}") from exc
    return SeedResult(corpus_path, query_log, docs, seed, corpus_hash, summary)
