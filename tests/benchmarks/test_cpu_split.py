"""benchmarks/cpu_split.py: the event loop's py-spy samples sorted into parts."""

from __future__ import annotations

from pathlib import Path

from benchmarks.cpu_split import spy_parts

LOOP = "thread (1): MainThread;run (uvicorn/server.py:86);Runner.run (asyncio/runners.py:118)"


def test_samples_go_to_the_first_part_in_their_stack(tmp_path: Path) -> None:
    raw = tmp_path / "service-200.txt"
    raw.write_text(
        "\n".join(
            [
                f"{LOOP} 50",  # the loop's own C code
                f"{LOOP};search (service/http/routes/search.py:40);"
                "call (service/cache/redis.py:276);execute (redis/asyncio/client.py:9) 20",
                f"{LOOP};search (service/http/routes/search.py:40) 10",
                f"{LOOP};fetch (asyncpg/connection.py:7) 15",
                f"{LOOP};inc (prometheus_client/values.py:3) 5",
                "thread (2): asyncio_0;run (onnxruntime/session.py:1) 400",  # not the loop
                "not a sample line",
            ]
        )
    )
    parts = spy_parts(raw)
    # redis wins over http: the first part of SPY_PARTS found anywhere in the stack
    assert parts == {"loop": 0.5, "redis": 0.2, "database": 0.15, "http": 0.1, "metrics": 0.05}
    assert list(parts) == ["loop", "redis", "database", "http", "metrics"]  # largest first


def test_an_empty_profile_has_no_parts(tmp_path: Path) -> None:
    raw = tmp_path / "empty.txt"
    raw.write_text("")
    assert spy_parts(raw) == {}
