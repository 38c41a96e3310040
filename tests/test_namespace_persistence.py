"""After a restart every namespace answers the same queries with the same results: a clean stop
(snapshots written), ``kill -9`` after writes that came after the last snapshot (replayed from
the store), and damaged or stale snapshots (repaired, never trusted blindly)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, start_server
from tests.processes import ServerProcess, spawn_server

pytestmark = pytest.mark.slow

ENV = {"DAKERA_EXACT_SEARCH_THRESHOLD": "300"}  # "cos" (800 vectors) runs on HNSW
RNG = np.random.default_rng(11)
COS = RNG.standard_normal((800, 16)).astype(np.float32)
EUC = RNG.standard_normal((60, 8)).astype(np.float32)
QUERIES = RNG.standard_normal((5, 16)).astype(np.float32)


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ROOT_KEY}"}, timeout=60
    )


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def fill(http: httpx.Client) -> None:
    for start in (0, 400):
        ok(
            http.post(
                "/v1/namespaces/cos/vectors",
                json={
                    "vectors": [
                        {"id": f"c{i}", "values": COS[i].tolist(), "metadata": {"m": i % 7}}
                        for i in range(start, start + 400)
                    ]
                },
            )
        )
    ok(http.post("/v1/namespaces", json={"name": "euc", "dimension": 8, "distance": "euclidean"}))
    ok(
        http.post(
            "/v1/namespaces/euc/vectors",
            json={
                "vectors": [
                    {"id": f"e{i}", "values": EUC[i].tolist(), "metadata": {"odd": i % 2 == 1}}
                    for i in range(60)
                ]
            },
        )
    )
    ok(http.post("/v1/namespaces", json={"name": "txt", "dimension": 1024}))
    ok(
        http.post(
            "/v1/namespaces/txt/upsert-text",
            json={
                "documents": [
                    {"id": "d1", "text": "The lighthouse keeper lit the lamp at dusk"},
                    {"id": "d2", "text": "Quarterly revenue grew by twelve percent"},
                    {
                        "id": "d3",
                        "text": "The ferry to the island leaves at noon",
                        "metadata": {"t": 1},
                    },
                ]
            },
        )
    )
    ok(
        http.post(
            "/v1/namespaces/txt/fulltext/index",
            json={
                "documents": [
                    {"id": "d4", "text": "Lamp oil and wicks for the lighthouse"},
                ]
            },
        )
    )
    ok(http.post("/admin/namespaces", json={"name": "late", "config": {"encryption": False}}))


def answers(http: httpx.Client) -> dict[str, Any]:
    out: dict[str, Any] = {"list": ok(http.get("/v1/namespaces"))}
    for name in ("cos", "euc", "txt", "late"):
        out[f"info-{name}"] = ok(http.get(f"/v1/namespaces/{name}"))
        for volatile in ("updated_at", "search_backend"):
            out[f"info-{name}"].pop(volatile, None)
    for i, query in enumerate(QUERIES):
        for flt in (None, {"m": 3}):
            body = {"vector": query.tolist(), "top_k": 10, "filter": flt}
            out[f"cos-{i}-{flt}"] = ok(http.post("/v1/namespaces/cos/query", json=body))["results"]
        body = {"vector": query[:8].tolist(), "top_k": 5, "filter": {"odd": True}}
        out[f"euc-{i}"] = ok(http.post("/v1/namespaces/euc/query", json=body))["results"]
    out["text"] = ok(http.post("/v1/namespaces/txt/query-text", json={"text": "boat schedule"}))[
        "results"
    ]
    out["bm25"] = ok(http.post("/v1/namespaces/txt/fulltext/search", json={"query": "lighthouse"}))
    out["hybrid"] = ok(http.post("/v1/namespaces/txt/hybrid", json={"text": "lamp"}))
    out["stats"] = ok(http.get("/v1/namespaces/txt/fulltext/stats"))
    out["count"] = ok(http.post("/v1/namespaces/cos/vectors/count", json={"filter": {"m": 1}}))
    for value in out.values():  # timings differ between runs; results must not
        if isinstance(value, dict):
            value.pop("search_time_ms", None)
    return out


def assert_same(before: dict[str, Any], after: dict[str, Any], *, bm25_scores: bool = True) -> None:
    """Equal answers. ``bm25_scores=False`` compares BM25 hits by id and order only: after a
    full-text delete, the live tantivy index still counts the deleted document in its BM25
    statistics until segments merge, while the rebuilt one does not (engine/text/fulltext.py)."""
    assert before.keys() == after.keys()
    for key in before:
        if not bm25_scores and key in ("bm25", "hybrid"):
            assert _ids(after[key]) == _ids(before[key]), key
            continue
        assert _rounded(after[key]) == _rounded(before[key]), key


def rebuilt(output: str) -> list[int]:
    """Vector counts of the indexes a start-up rebuilt from the store (instead of loading)."""
    return [
        int(n) for n in re.findall(r"rebuilt the index of a namespace \((\d+) vectors\)", output)
    ]


def _ids(answer: dict[str, Any]) -> list[str]:
    return [r["id"] for r in answer["results"]]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def more_writes(http: httpx.Client) -> None:
    """Writes after the last snapshot: new ids, a replaced vector, deletes by id and filter."""
    ok(
        http.post(
            "/v1/namespaces/cos/vectors",
            json={
                "vectors": [
                    {"id": f"n{i}", "values": (COS[i] * -1).tolist(), "metadata": {"m": 3}}
                    for i in range(20)
                ]
                + [{"id": "c5", "values": QUERIES[0].tolist(), "metadata": {"m": 3}}]
            },
        )
    )
    ok(http.post("/v1/namespaces/cos/vectors/delete", json={"ids": ["c1", "c2", "c3"]}))
    ok(http.post("/v1/namespaces/cos/vectors/bulk-delete", json={"filter": {"m": 6}}))
    ok(
        http.post(
            "/v1/namespaces/euc/vectors/bulk-update",
            json={"filter": {"odd": True}, "update": {"seen": 1}},
        )
    )
    ok(http.post("/v1/namespaces/late/vectors", json={"vectors": [{"id": "l", "values": [1, 2]}]}))
    ok(http.post("/v1/namespaces/txt/fulltext/delete", json={"ids": ["d4"]}))


def test_clean_restart_answers_the_same_from_snapshots(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    first = spawn_server(data, log, **ENV)
    try:
        with client(first) as http:
            fill(http)
            assert ok(http.get("/v1/namespaces/cos"))["search_backend"] == "hnsw"
            before = answers(http)
    finally:
        first.stop()
    assert len(list((data / "snapshots").glob("*.snap"))) == 3  # cos, euc, txt ("late" is empty)
    mark = len(first.output())
    second = spawn_server(data, log, **ENV)
    try:
        with client(second) as http:
            assert_same(before, answers(http))
    finally:
        second.stop()
    assert rebuilt(second.output()[mark:]) == []  # loaded, not rebuilt


def test_kill_9_after_later_writes_replays_them(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    exact = {"DAKERA_EXACT_SEARCH_THRESHOLD": "100000"}  # exact search: order-independent
    first = spawn_server(data, log, **exact)
    with client(first) as http:
        fill(http)
    first.stop()  # snapshots written here
    old_snapshots = {p.name: p.read_bytes() for p in (data / "snapshots").glob("*.snap")}
    second = spawn_server(data, log, **exact)
    with client(second) as http:
        more_writes(http)
        before = answers(http)
    second.process.kill()  # no shutdown: the snapshots on disk are older than the store
    second.process.wait()
    assert {p.name: p.read_bytes() for p in (data / "snapshots").glob("*.snap")} == old_snapshots
    mark = len(second.output())
    third = spawn_server(data, log, **exact)
    try:
        with client(third) as http:
            after = answers(http)
            assert ok(http.post("/v1/namespaces/cos/fetch", json={"ids": ["c1", "c5"]}))["vectors"][
                0
            ]["values"] == pytest.approx(QUERIES[0].tolist())
    finally:
        third.stop()
    assert_same(before, after, bm25_scores=False)
    # Snapshot + replay; only "late", whose first vector came after its snapshot, is built.
    assert rebuilt(third.output()[mark:]) == [1]


def test_damaged_stale_and_foreign_snapshots_are_repaired(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    first = spawn_server(data, log, **ENV)
    with client(first) as http:
        fill(http)
    first.stop()
    stale = tmp_path / "stale"
    shutil.copytree(data / "snapshots", stale)
    second = spawn_server(data, log, **ENV)
    with client(second) as http:
        more_writes(http)
        ok(http.delete("/v1/namespaces/euc"))  # re-created below: a new life, same name
        ok(
            http.post(
                "/v1/namespaces", json={"name": "euc", "dimension": 8, "distance": "euclidean"}
            )
        )
        ok(
            http.post(
                "/v1/namespaces/euc/vectors",
                json={
                    "vectors": [
                        {"id": f"e{i}", "values": EUC[i].tolist(), "metadata": {"odd": i % 2 == 1}}
                        for i in range(0, 60, 3)
                    ]
                },
            )
        )
    second.stop()
    # Put back the snapshots of before the writes (stale for cos, txt and late; of the
    # previous life for euc) and damage one byte in the middle of cos's.
    for snapshot in stale.iterdir():
        shutil.copy(snapshot, data / "snapshots" / snapshot.name)
    biggest = max((data / "snapshots").glob("*.snap"), key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    mark = len(second.output())
    third = spawn_server(data, log, **ENV)
    try:
        with client(third) as http:
            repaired = answers(http)
            assert ok(http.get("/v1/namespaces/euc"))["vector_count"] == 20
            assert ok(http.get("/v1/namespaces/late"))["vector_count"] == 1
            ids = {r["id"] for key, rs in repaired.items() if key.startswith("cos-") for r in rs}
            assert not ids & {"c1", "c2", "c3"}
            assert "n0" in {
                r["id"]
                for r in ok(
                    http.post(
                        "/v1/namespaces/cos/query",
                        json={"vector": (COS[0] * -1).tolist(), "top_k": 1},
                    )
                )["results"]
            }
    finally:
        third.stop()
    output = third.output()[mark:]
    assert "damaged; rebuilding" in output or "did not match the store; rebuilding" in output
    # And a fourth start from the repaired snapshots answers like the third.
    fourth = spawn_server(data, log, **ENV)
    try:
        with client(fourth) as http:
            assert_same(repaired, answers(http))
    finally:
        fourth.stop()


def test_snapshots_follow_changes_and_are_sealed_with_the_store_key(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    running = start_server(tmp_path, embedder, encryption_key="ab" * 32)
    try:
        with running.http() as http:
            vectors = [
                {
                    "id": f"secret-{i}",
                    "values": COS[i % 800].tolist(),
                    "metadata": {"note": "classified"},
                }
                for i in range(1000)
            ]
            ok(http.post("/v1/namespaces/big/vectors", json={"vectors": vectors}))
            ok(http.post("/v1/namespaces/small/vectors", json={"vectors": vectors[:5]}))
        namespaces = running.engine.namespaces
        assert namespaces.write_snapshots() == 1  # "big"; small ones rebuild in no time
        assert namespaces.write_snapshots() == 0  # nothing changed since
        assert namespaces.write_snapshots(force=True) == 1  # "small" (as at shutdown)
    finally:
        running.stop()
    files = [namespaces.snapshots.path(name) for name in ("big", "small")]
    for file in files:
        raw = file.read_bytes()
        assert b"secret-" not in raw and b"classified" not in raw and b"DKSNAP" not in raw
