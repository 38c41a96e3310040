"""Agent index snapshots make restarts fast but never change what recall answers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.conftest import start_server


def _store(server: Any, n: int) -> list[str]:
    with server.http() as http:
        answer = http.post(
            "/v1/memories/store/batch",
            json={
                "agent_id": "snap",
                "memories": [
                    {"content": f"snapshot memory {i} about topic {i % 7}"} for i in range(n)
                ],
            },
        )
        assert answer.status_code == 200
        return [m["id"] for m in answer.json()["stored"]]


def _recall(server: Any, query: str) -> list[str]:
    with server.http() as http:
        found = http.post(
            "/v1/memory/recall", json={"agent_id": "snap", "query": query, "top_k": 10}
        ).json()
    return [m["memory"]["id"] for m in found["memories"]]


def test_restart_from_snapshot_answers_the_same(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir, embedder, exact_search_threshold=40)
    ids = _store(first, 80)
    before = _recall(first, "topic 3")
    first.stop()
    assert list((data_dir / "snapshots").glob("*")), "a clean shutdown writes a snapshot"
    second = start_server(data_dir, embedder, exact_search_threshold=40)
    try:
        assert _recall(second, "topic 3") == before
        # Changes after the snapshot (an update and a forget) are replayed, not lost.
        with second.http() as http:
            http.put(
                f"/v1/memory/update/{ids[0]}?agent_id=snap",
                json={"content": "a completely different sentence about volcanoes"},
            )
            http.post("/v1/memory/forget", json={"agent_id": "snap", "memory_ids": [ids[1]]})
        # A copy taken now is what a crash would leave: committed changes, the old snapshot.
        crashed = tmp_path / "crashed"
        shutil.copytree(data_dir, crashed)
    finally:
        second.stop()
    third = start_server(crashed, embedder, exact_search_threshold=40)
    try:
        assert _recall(third, "volcanoes")[0] == ids[0]
        assert ids[1] not in _recall(third, "snapshot memory 1 about topic 1")
    finally:
        third.stop()


def test_a_damaged_snapshot_is_rebuilt(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir, embedder, exact_search_threshold=40)
    _store(first, 60)
    before = _recall(first, "topic 5")
    first.stop()
    for path in (data_dir / "snapshots").glob("*"):
        path.write_bytes(b"garbage")
    second = start_server(data_dir, embedder, exact_search_threshold=40)
    try:
        assert _recall(second, "topic 5") == before
    finally:
        second.stop()
