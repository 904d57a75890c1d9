"""The search flow: validate -> (cache) -> (single-flight) -> embed -> database -> respond.

Routes call :class:`SearchEngine`; it owns the order of the steps so that each step can
be switched by a setting and measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from service.api import NewDocument, SearchQuery
from service.db import Database, Hit
from service.embed import Embedder, Vectors


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[Hit, ...]


class SearchEngine:
    def __init__(self, db: Database, embedder: Embedder, stream_batch_size: int) -> None:
        self.db = db
        self.embedder = embedder
        self.stream_batch_size = stream_batch_size

    async def embed_query(self, query: SearchQuery) -> Vectors:
        return await self.embedder.embed([query.text])

    async def search(self, query: SearchQuery) -> SearchResult:
        vector = await self.embed_query(query)
        hits = await self.db.search(vector[0], query.k, query.topic)
        return SearchResult(tuple(hits))

    async def stream(self, query: SearchQuery) -> AsyncIterator[Sequence[Hit]]:
        vector = await self.embed_query(query)
        async for batch in self.db.stream(vector[0], query.k, query.topic, self.stream_batch_size):
            yield batch

    async def add_documents(self, docs: Sequence[NewDocument]) -> list[int]:
        vectors = await self.embedder.embed([f"{d.title}. {d.body}" for d in docs])
        return await self.db.insert_documents(
            [(d.title, d.body, d.topic) for d in docs], vectors
        )

    async def delete_document(self, doc_id: int) -> bool:
        return await self.db.delete_document(doc_id)
