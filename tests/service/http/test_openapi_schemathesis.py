"""Schemathesis over the service's own OpenAPI schema, against a real service.

Every operation gets up to 30 generated requests (derandomized, so a run is repeatable);
each response must be no 5xx and must match the schema (status code, content type,
headers, body). The service runs on a database of its own: the fuzzer inserts and
deletes documents, which must not touch the corpus the recall tests measure.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from ci.seed import seed_corpus
from service.http.openapi import build_schema
from service.settings import Settings
from tests.harness import RunningService, Servers, ServiceFactory

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]

FUZZ_DOCS = 500
# A body over the byte limit is refused with 413 before it is parsed, whatever it holds.
_CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422]
            }
        }
    }
)
schema = (
    schemathesis.openapi.from_dict(build_schema(Settings()), config=_CONFIG)
    # admin routes: 404 without SEARCH_ADMIN_TOKEN; tested with their token elsewhere
    # (tests/service/cache/, tests/service/http/routes/); tracing would slow the rest of the run
    .exclude(path="/v1/cache/invalidate")
    .exclude(path="/v1/admin/explain")
    .exclude(path_regex="^/v1/debug/")
)


@pytest.fixture(scope="module")
def fuzz_service(servers: Servers, module_service_factory: ServiceFactory) -> RunningService:
    async def create() -> None:
        conn = await asyncpg.connect(servers.database_url)
        try:
            await conn.execute("DROP DATABASE IF EXISTS fuzz")
            await conn.execute("CREATE DATABASE fuzz")
        finally:
            await conn.close()

    asyncio.run(create())
    url = servers.database_url.rsplit("/", 1)[0] + "/fuzz"
    seed_corpus(servers.run_dir, url, FUZZ_DOCS, 3, {"SEARCH_EMBEDDER": "hash"})
    return module_service_factory(database_url=url, SEARCH_INDEX_MODE="hnsw")


def test_served_schema_is_the_one_fuzzed(fuzz_service: RunningService) -> None:
    resp = httpx.get(fuzz_service.url + "/openapi.json", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == build_schema(Settings())


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case[Any], fuzz_service: RunningService
) -> None:
    case.call_and_validate(base_url=fuzz_service.url, timeout=30)
