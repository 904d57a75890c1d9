"""The hand-written OpenAPI schema documents every route and method the app serves."""

from __future__ import annotations

from service.http.openapi import build_schema
from service.http.routes import ROUTES
from service.settings import Settings


def test_every_route_and_method_is_documented() -> None:
    paths = build_schema(Settings())["paths"]
    served = {(r.path, m.lower()) for r in ROUTES for m in (r.methods or ()) if m != "HEAD"}
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert served == documented


def test_limits_come_from_the_settings() -> None:
    doc = build_schema(Settings(max_k=50, max_query_chars=300))
    (q, k, _topic) = doc["paths"]["/v1/search"]["get"]["parameters"]
    assert (q["schema"]["maxLength"], k["schema"]["maximum"]) == (300, 50)
    assert doc["openapi"] == "3.1.0"
    shed = doc["paths"]["/v1/search"]["post"]["responses"]["503"]
    assert shed["headers"]["Retry-After"]["required"] is True
