"""ci.measure.vegeta_targets: targets from the query log, the writes among them, scratch ids."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ci.errors import RunError
from ci.measure import vegeta_targets
from ci.seed import generate_query_log


def test_json_targets_follow_the_query_log() -> None:
    log = generate_query_log(seed=3, distinct=200)
    targets = vegeta_targets.json_targets(log, "http://svc:9/", count=2000, seed=1)
    assert targets == vegeta_targets.json_targets(log, "http://svc:9/", count=2000, seed=1)
    assert len(targets) == 2000
    posts = [t for t in targets if t["method"] == "POST"]
    assert 100 < len(posts) < 300  # about one in ten
    body: dict[str, Any] = json.loads(base64.b64decode(posts[0]["body"]))
    assert set(body) >= {"query", "k"}
    gets = [t for t in targets if t["method"] == "GET"]
    assert all(t["url"].startswith("http://svc:9/v1/search?") for t in gets)
    top = log["queries"][0]["q"]
    drawn = [parse_qs(urlsplit(t["url"]).query)["q"][0] for t in gets]
    # the most popular query (weight ~0.17 at s=1.1 over 200) dominates the draw
    assert drawn.count(top) / len(drawn) > 0.1


def test_json_targets_refuse_an_empty_log() -> None:
    with pytest.raises(RunError, match="no queries"):
        vegeta_targets.json_targets({"queries": []}, "http://x")
    with pytest.raises(RunError, match="count=0"):
        vegeta_targets.json_targets(generate_query_log(seed=1, distinct=5), "http://x", count=0)


def test_write_json_targets_one_object_per_line(tmp_path: Path) -> None:
    log = tmp_path / "querylog.json"
    log.write_text(json.dumps(generate_query_log(seed=2, distinct=50)))
    out = vegeta_targets.write_json_targets(log, "http://h:1", tmp_path / "t.jsonl", count=30)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 30
    assert all(set(r) >= {"method", "url", "header"} for r in rows)


def test_writes_follow_a_share_of_the_searches_and_delete_each_scratch_id_once() -> None:
    log = generate_query_log(seed=3, distinct=200)
    scratch = list(range(9000, 9200))
    targets = vegeta_targets.json_targets(
        log, "http://svc:9", count=3000, seed=2, write_fraction=0.02, scratch_ids=scratch
    )
    ingests = [i for i, t in enumerate(targets) if t["url"] == "http://svc:9/v1/documents"]
    deletes = [t for t in targets if t["method"] == "DELETE"]
    assert 30 < len(ingests) < 90  # about 2 % of 3000 searches
    assert len(targets) == 3000 + 2 * len(ingests)
    # each ingest is followed by the delete of the next scratch document, none twice
    assert [targets[i + 1]["url"] for i in ingests] == [d["url"] for d in deletes]
    ids = [int(d["url"].rsplit("/", 1)[1]) for d in deletes]
    assert ids == scratch[: len(ids)]
    body: dict[str, Any] = json.loads(base64.b64decode(targets[ingests[0]]["body"]))
    assert set(body["documents"][0]) == {"title", "body", "topic"}
    assert targets[ingests[0]]["header"] == {"Content-Type": ["application/json"]}


def test_writes_stop_when_the_scratch_ids_run_out_and_none_means_read_only() -> None:
    log = generate_query_log(seed=3, distinct=50)
    few = vegeta_targets.json_targets(
        log, "http://h", 500, 1, write_fraction=0.5, scratch_ids=[1, 2]
    )
    assert [t["url"] for t in few if t["method"] == "DELETE"] == [
        "http://h/v1/documents/1",
        "http://h/v1/documents/2",
    ]
    plain = vegeta_targets.json_targets(log, "http://h", 500, 1)
    assert plain == vegeta_targets.json_targets(log, "http://h", 500, 1, write_fraction=0.0)
    assert all("/v1/documents" not in t["url"] for t in plain)
    with pytest.raises(RunError, match=r"write_fraction=1\.5"):
        vegeta_targets.json_targets(log, "http://h", 5, write_fraction=1.5)


def test_scratch_needed_covers_the_binomial_tail() -> None:
    assert vegeta_targets.scratch_needed(3000, 0.0) == 0
    need = vegeta_targets.scratch_needed(3000, 0.02)
    assert 60 + 5 * 60**0.5 < need <= 60 + 5 * 60**0.5 + 6


def test_posted_and_deleted_ids(tmp_path: Path) -> None:
    def row(method: str, url: str, code: int, body: object) -> str:
        raw = base64.b64encode(json.dumps(body).encode()).decode()
        return json.dumps({"method": method, "url": url, "code": code, "body": raw})

    encoded = [
        row("POST", "http://h/v1/documents", 201, {"ids": [41, 42]}),
        row("POST", "http://h/v1/documents", 503, {"error": {"message": "x"}}),
        row("POST", "http://h/v1/search", 200, {"results": []}),
        row("DELETE", "http://h/v1/documents/7", 204, ""),
        "",
    ]
    assert vegeta_targets.posted_ids(encoded) == [41, 42]
    targets = tmp_path / "t.jsonl"
    targets.write_text(
        '{"method":"DELETE","url":"http://h/v1/documents/7","header":{}}\n'
        '{"method":"GET","url":"http://h/v1/search?q=a","header":{}}\n'
    )
    assert vegeta_targets.deleted_ids(targets) == {7}
