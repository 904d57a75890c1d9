"""Vegeta JSON targets from the query log, with writes like the k6 mix.

JSON targets are one object per line ``{"method","url","header":{name:[values]},"body":base64}``
(vegeta's ``-format=json``); ``scenarios/constant_rate.js`` replays the same file with k6.

Writes, like the k6 mix: after a share ``write_fraction`` of the searches a target ingests a
document (``POST /v1/documents``) and another deletes one (``DELETE /v1/documents/{id}``).
A target list is static, so a delete cannot name what an earlier target created: it names
one of the *scratch documents* that :func:`create_scratch` adds right before the attack,
each used once (the runner makes at least as many targets as the attack sends, so no
target repeats). After the attack :func:`cleanup` deletes the documents the attack's
POSTs created (their ids are in the response bodies of ``vegeta encode``) and the unused
scratch documents, so the corpus keeps its size. The k6 fallback sends the same targets
but records no bodies: the documents it created stay (``write_fraction`` of its requests).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from ci.errors import RunError

SCRATCH_TITLE = "vegeta scratch document"
MAX_DOCUMENTS_PER_POST = 1000  # the service's SEARCH_MAX_DOCUMENTS_PER_REQUEST default


def json_targets(
    query_log: Mapping[str, Any],
    base_url: str,
    count: int = 1000,
    seed: int = 0,
    *,
    write_fraction: float = 0.0,
    scratch_ids: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """``count`` searches drawn from the query log by weight (one in ten a POST search);
    after a ``write_fraction`` of them, an ingest and a delete of the next scratch id (while
    ``scratch_ids`` last). The list is then longer than ``count`` by two per write."""
    queries = query_log.get("queries")
    if not isinstance(queries, list) or not queries:
        raise RunError("the query log holds no queries: run `perfci seed` first")
    if count < 1:
        raise RunError(f"count={count} is invalid: expected at least 1 target")
    if not 0 <= write_fraction <= 1:
        raise RunError(f"write_fraction={write_fraction} is invalid: expected 0..1")
    rng = random.Random(seed)
    weights = [float(q["weight"]) for q in queries]
    base = base_url.rstrip("/")
    scratch = iter(scratch_ids)
    out: list[dict[str, Any]] = []
    for q in rng.choices(queries, weights=weights, k=count):
        out.append(_search_target(q, base, post=rng.random() < 0.1))
        if write_fraction and rng.random() < write_fraction:
            doc_id = next(scratch, None)
            if doc_id is not None:
                out.append(_ingest_target(q, base))
                out.append(
                    {"method": "DELETE", "url": f"{base}/v1/documents/{doc_id}", "header": {}}
                )
    return out


def _search_target(q: Mapping[str, Any], base: str, *, post: bool) -> dict[str, Any]:
    if post:
        body: dict[str, Any] = {"query": q["q"], "k": q["k"]}
        if q.get("topic"):
            body["filter"] = {"topic": q["topic"]}
        return _json_target("POST", f"{base}/v1/search", body)
    params = {"q": q["q"], "k": q["k"]}
    if q.get("topic"):
        params["topic"] = q["topic"]
    return {"method": "GET", "url": f"{base}/v1/search?{urlencode(params)}", "header": {}}


def _ingest_target(q: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The document k6's maybeWrite ingests for the query (scenarios/lib/flows.js)."""
    doc = {
        "title": f"load test note on {q['q']}",
        "body": f"{q['q']} written by the load test and deleted right after",
        "topic": q.get("topic") or "misc/load",
    }
    return _json_target("POST", f"{base}/v1/documents", {"documents": [doc]})


def _json_target(method: str, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return {
        "method": method,
        "url": url,
        "header": {"Content-Type": ["application/json"]},
        "body": base64.b64encode(raw).decode(),
    }


def scratch_needed(count: int, write_fraction: float) -> int:
    """Scratch documents enough for the writes among ``count`` searches, bar a 1e-6 chance.

    The writes are Binomial(count, f): mean + 5 standard deviations, plus 5.
    """
    mean = count * write_fraction
    return 0 if write_fraction <= 0 else math.ceil(mean + 5 * math.sqrt(mean) + 5)


def write_json_targets(
    query_log_path: Path,
    base_url: str,
    out: Path,
    count: int = 1000,
    seed: int = 0,
    *,
    write_fraction: float = 0.0,
    scratch_ids: Sequence[int] = (),
) -> Path:
    try:
        log = json.loads(query_log_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{query_log_path}: cannot read the query log: {exc}") from exc
    targets = json_targets(
        log, base_url, count, seed, write_fraction=write_fraction, scratch_ids=scratch_ids
    )
    lines = [json.dumps(t, separators=(",", ":")) for t in targets]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def deleted_ids(targets: Path) -> set[int]:
    """The document ids the DELETE targets of a targets file name."""
    ids = set()
    for line in targets.read_text().splitlines():
        t = json.loads(line) if line.strip() else {}
        if t.get("method") == "DELETE":
            ids.add(int(str(t["url"]).rsplit("/", 1)[1]))
    return ids


# -- scratch documents -------------------------------------------------------------------


def create_scratch(base_url: str, n: int, timeout_s: float = 30.0) -> list[int]:
    """``n`` documents for the DELETE targets to remove; their ids."""
    ids: list[int] = []
    doc = {"title": SCRATCH_TITLE, "body": "deleted by a vegeta target", "topic": "misc/load"}
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        while len(ids) < n:
            batch = min(MAX_DOCUMENTS_PER_POST, n - len(ids))
            try:
                resp = client.post("/v1/documents", json={"documents": [doc] * batch})
            except httpx.HTTPError as exc:
                raise RunError(f"cannot create vegeta's scratch documents: {exc}") from exc
            if resp.status_code != 201:
                detail = f"{resp.status_code} {resp.text[:200]}"
                raise RunError(f"cannot create vegeta's scratch documents: {detail}")
            ids.extend(int(i) for i in resp.json()["ids"])
    return ids


def posted_ids(encoded: Iterable[str]) -> list[int]:
    """Ids of the documents the attack's ``POST /v1/documents`` created (``vegeta encode``)."""
    ids: list[int] = []
    for line in encoded:
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("method") != "POST" or not str(row.get("url", "")).endswith("/v1/documents"):
            continue
        if int(row.get("code", 0)) != 201 or not row.get("body"):
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            ids.extend(int(i) for i in json.loads(base64.b64decode(row["body"]))["ids"])
    return ids


def cleanup(base_url: str, ids: Iterable[int], timeout_s: float = 30.0) -> int:
    """Delete ``ids`` (404: already gone is fine); how many were deleted."""
    deleted = 0
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for doc_id in ids:
            with contextlib.suppress(httpx.HTTPError):
                deleted += client.delete(f"/v1/documents/{doc_id}").status_code == 204
    return deleted


@dataclass(frozen=True, slots=True)
class PreparedTargets:
    """A targets file for one attack, and the scratch documents its DELETE targets need."""

    path: Path
    scratch_ids: tuple[int, ...]


def prepare_targets(
    query_log_path: Path,
    base_url: str,
    out: Path,
    *,
    rate: float,
    duration_s: float,
    write_fraction: float,
    seed: int = 0,
) -> PreparedTargets:
    """Targets for ``rate`` x ``duration_s`` requests (none repeats), scratch documents made."""
    count = math.ceil(rate * duration_s * 1.05) + 10  # vegeta may send a few more than r x d
    scratch = create_scratch(base_url, scratch_needed(count, write_fraction))
    path = write_json_targets(
        query_log_path, base_url, out, count, seed,
        write_fraction=write_fraction, scratch_ids=scratch,
    )  # fmt: skip
    return PreparedTargets(path, tuple(scratch))


def finish_targets(base_url: str, prepared: PreparedTargets, encoded: Iterable[str] = ()) -> int:
    """Delete what the attack added (``encoded``: vegeta's results) and the unused scratch."""
    unused = set(prepared.scratch_ids) - deleted_ids(prepared.path)
    return cleanup(base_url, [*sorted(unused), *posted_ids(encoded)])
