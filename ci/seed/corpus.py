"""The synthetic corpus: documents drawn from topic vocabularies, deterministic per (docs, seed).

Documents draw their words from a topic's vocabulary, so their embeddings cluster as real
text does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ci.errors import SeedError
from ci.seed.vocab import BODY_TEMPLATES, DOMAINS, FILLER, TITLE_TEMPLATES


@dataclass(frozen=True, slots=True)
class Topic:
    domain: str
    sub: str
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.sub}"


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
