"""The tables: documents with their embeddings, and corpus_meta (model id, corpus hash).

Schema and index DDL run under one advisory lock so that several workers (and the bulk
loader) starting together never race on them.
"""

from __future__ import annotations

from service.model import DIM

SCHEMA_LOCK_KEY = 7_338_214_001  # advisory lock serialising schema/index DDL across workers

SCHEMA_SQL = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS corpus_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id        bigserial PRIMARY KEY,
    title     text NOT NULL,
    body      text NOT NULL,
    topic     text NOT NULL,
    embedding vector({DIM}) NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_topic_idx ON documents (topic);
"""

LOCK_SQL = "SELECT pg_advisory_xact_lock($1)"
MODEL_ID_SQL = "SELECT value FROM corpus_meta WHERE key = 'model_id'"
CLAIM_MODEL_SQL = (
    "INSERT INTO corpus_meta (key, value) VALUES ('model_id', $1) ON CONFLICT (key) DO NOTHING"
)
INDEX_PRESENT_SQL = (
    "SELECT count(*) FROM pg_indexes WHERE tablename = 'documents' AND indexname = $1"
)
