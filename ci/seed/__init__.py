"""Corpus and query-log generation, their vocabularies, and the bulk load.

``corpus`` (documents per topic), ``querylog`` (Zipf popularity), ``vocab`` (the word
lists, data only), ``load`` (generate or reuse the files, load them with the service's
loader in a subprocess).
"""

from __future__ import annotations

from ci.seed.corpus import Topic, generate_corpus, topics, write_corpus
from ci.seed.load import SeedResult, embedding_cache_dir, seed_corpus
from ci.seed.querylog import QUERY_LOG_VERSION, generate_query_log, write_query_log

__all__ = [
    "QUERY_LOG_VERSION",
    "SeedResult",
    "Topic",
    "embedding_cache_dir",
    "generate_corpus",
    "generate_query_log",
    "seed_corpus",
    "topics",
    "write_corpus",
    "write_query_log",
]
