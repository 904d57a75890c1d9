"""Generate the synthetic corpus and the Zipf query log; bulk-load through the service's loader.

Generation is deterministic for a given (docs, seed). Documents draw their words from a
topic's vocabulary, so their embeddings cluster as real text does. The query log lists
distinct queries with Zipf-distributed popularity weights, so that a few queries
dominate the traffic as in real search logs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ci.corpus_vocab import BODY_TEMPLATES, DOMAINS, FILLER, QUERY_TEMPLATES, TITLE_TEMPLATES
from ci.errors import SeedError

QUERY_LOG_VERSION = 1


@dataclass(frozen=True, slots=True)
class Topic:
    domain: str
    sub: str
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.sub}"


@dataclass(frozen=True, slots=True)
class SeedResult:
    corpus_path: Path
    query_log_path: Path
    docs: int
    seed: int
    corpus_hash: str
    loader: dict[str, Any]


def topics() -> list[Topic]:
    out = []
    for domain, (subs, words) in DOMAINS.items():
        for sub in subs:
            out.append(Topic(domain, sub, words))
    return out


def generate_corpus(docs: int, seed: int) -> list[dict[str, str]]:
    """``docs`` documents over the topics; topic popularity is mildly skewed."""
    if docs < 1:
        raise SeedError(f"docs={docs} is invalid: expected at least 1")
    rng = np.random.default_rng(seed)
    all_topics = topics()
    weights = 1.0 / np.arange(1, len(all_topics) + 1) ** 0.5
    weights /= weights.sum()
    order = rng.permutation(len(all_topics))
    picks = rng.choice(len(all_topics), size=docs, p=weights)
    corpus = []
    for n in range(docs):
        topic = all_topics[order[picks[n]]]
        words = topic.words
        w = [words[i] for i in rng.choice(len(words), size=6, replace=False)]
        title_tpl = TITLE_TEMPLATES[int(rng.integers(len(TITLE_TEMPLATES)))]
        title = title_tpl.format(
            sub=topic.sub, Sub=topic.sub.capitalize(), domain=topic.domain, word=w[0]
        )
        sentences = []
        for _ in range(int(rng.integers(3, 6))):
            tpl = BODY_TEMPLATES[int(rng.integers(len(BODY_TEMPLATES)))]
            sentences.append(
                tpl.format(sub=topic.sub, domain=topic.domain, w1=w[1], w2=w[2], w3=w[3])
            )
            w = w[1:] + w[:1]
        extra = " ".join(rng.choice(FILLER, size=4)) + " " + " ".join(w[3:])
        corpus.append(
            {"title": title, "body": " ".join(sentences) + " " + extra, "topic": topic.name}
        )
    return corpus


def generate_query_log(seed: int, distinct: int = 2000, zipf_s: float = 1.1) -> dict[str, Any]:
    """Distinct queries with Zipf popularity; k and topic filters mixed in."""
    rng = np.random.default_rng(seed + 1)
    all_topics = topics()
    queries: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str | None]] = set()
    attempts = 0
    while len(queries) < distinct and attempts < distinct * 20:
        attempts += 1
        topic = all_topics[int(rng.integers(len(all_topics)))]
        tpl = QUERY_TEMPLATES[int(rng.integers(len(QUERY_TEMPLATES)))]
        text = tpl.format(
            sub=topic.sub, domain=topic.domain, w1=topic.words[int(rng.integers(len(topic.words)))]
        )
        k = int(rng.choice([10, 10, 10, 10, 20, 50, 100]))
        flt = topic.name if rng.random() < 0.1 else None
        key = (text, k, flt)
        if key in seen:
            continue
        seen.add(key)
        queries.append({"q": text, "k": k, "topic": flt})
    ranks = np.arange(1, len(queries) + 1, dtype=np.float64)
    weights = 1.0 / ranks**zipf_s
    weights /= weights.sum()
    for q, wgt in zip(queries, weights, strict=True):
        q["weight"] = float(wgt)
    top10 = float(weights[:10].sum())
    return {
        "version": QUERY_LOG_VERSION,
        "seed": seed,
        "zipf_s": zipf_s,
        "distinct": len(queries),
        "top10_share": round(top10, 4),
        "queries": queries,
    }


def embedding_cache_dir() -> Path:
    """Shared by every run dir (A/B runs each get a fresh one): ``PERFCI_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/perfci/embeddings`` or ``~/.cache/perfci/embeddings``. Files are keyed
    by corpus hash and model id, so sharing them is safe."""
    explicit = os.environ.get("PERFCI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perfci" / "embeddings"


def write_corpus(run_dir: Path, docs: int, seed: int) -> tuple[Path, str]:
    corpus_dir = run_dir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    path = corpus_dir / f"corpus-{docs}-{seed}.jsonl"
    if not path.exists():
        lines = [json.dumps(d, separators=(",", ":")) for d in generate_corpus(docs, seed)]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def write_query_log(run_dir: Path, seed: int) -> Path:
    path = run_dir / "corpus" / "querylog.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(generate_query_log(seed)))
    return path


def seed_corpus(
    run_dir: Path,
    database_url: str,
    docs: int,
    seed: int,
    service_env: dict[str, str],
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> SeedResult:
    """Generate (or reuse) the corpus files and load them with ``python -m service.loader``."""
    progress(f"generating a corpus of {docs} documents (seed {seed})")
    corpus_path, corpus_hash = write_corpus(run_dir, docs, seed)
    query_log = write_query_log(run_dir, seed)
    env = dict(os.environ)
    env.update(service_env)
    env["DATABASE_URL"] = database_url
    cmd = [
        sys.executable,
        "-m",
        "service.loader",
        "--corpus",
        str(corpus_path),
        "--cache-dir",
        str(embedding_cache_dir()),
    ]
    if force:
        cmd.append("--force")
    progress("embedding, loading (COPY) and indexing")
    project_root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        cmd, env=env, cwd=project_root, stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise SeedError(f"loading the corpus failed (exit {proc.returncode}); see messages above")
    try:
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise SeedError(f"the loader printed no summary: {proc.stdout[-500:]!r}") from exc
    return SeedResult(corpus_path, query_log, docs, seed, corpus_hash, summary)
