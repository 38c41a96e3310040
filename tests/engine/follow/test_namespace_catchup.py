"""Another node's writes to a namespace reach this node row by row (engine/vectors/catchup.py):
new, changed and deleted vectors, metadata and full-text documents are served on the next
request without the namespace being reloaded and its index rebuilt; a whole-namespace change
(``delete_all``) still reloads it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.pgcluster import PostgresCluster
from tests.processes import ServerProcess, spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
REBUILT = "rebuilt the index of a namespace"
NS = "/v1/namespaces/catchup"


@pytest.fixture(scope="module")
def pair(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client, ServerProcess]]:
    url = postgres.url(postgres.create_database("catchup"))
    base = tmp_path_factory.mktemp("catchup")
    started: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(spawn_server(base / name, base / f"{name}.log", DAKERA_STORAGE_URL=url))
        a, b = (httpx.Client(base_url=s.url, headers=HEADERS, timeout=30) for s in started)
        with a, b:
            yield a, b, started[1]
    finally:
        for server in started:
            server.stop()


def ids_near(node: httpx.Client, vector: list[float], **body: object) -> list[str]:
    answer = node.post(f"{NS}/query", json={"vector": vector, "top_k": 50, **body})
    assert answer.status_code == 200, answer.text
    return [hit["id"] for hit in answer.json()["results"]]


def ok(answer: httpx.Response) -> httpx.Response:
    assert answer.status_code == 200, answer.text
    return answer


def test_foreign_writes_apply_row_by_row(
    pair: tuple[httpx.Client, httpx.Client, ServerProcess],
) -> None:
    a, b, b_process = pair
    vectors = [
        {"id": f"v{i}", "values": [1.0, float(i), 0.5], "metadata": {"k": i}} for i in range(30)
    ]
    ok(a.post(f"{NS}/vectors", json={"vectors": vectors}))
    assert ok(b.get(NS)).json()["vector_count"] == 30  # B's first sight of it: loaded whole
    rebuilt_before = b_process.output().count(REBUILT)

    ok(a.post(f"{NS}/vectors", json={"vectors": [{"id": "new", "values": [0.0, 0.0, 1.0]}]}))
    assert ids_near(b, [0.0, 0.0, 1.0])[0] == "new"
    ok(a.post(f"{NS}/vectors/delete", json={"ids": ["v5", "v6"]}))
    seen = ids_near(b, [1.0, 5.0, 0.5])
    assert "v5" not in seen and "v6" not in seen and len(seen) == 29
    ok(a.post(f"{NS}/vectors/bulk-update", json={"filter": {"k": 7}, "update": {"k": 700}}))
    assert ids_near(b, [1.0, 7.0, 0.5], filter={"k": 700}) == ["v7"]
    ok(a.post(f"{NS}/vectors", json={"vectors": [{"id": "v8", "values": [0.0, 1.0, 0.0]}]}))
    assert ids_near(b, [0.0, 1.0, 0.0])[0] == "v8"
    assert ok(b.get(NS)).json()["vector_count"] == 29
    ok(a.post(f"{NS}/fulltext/index", json={"documents": [{"id": "d1", "text": "zebra crossing"}]}))
    found = ok(b.post(f"{NS}/fulltext/search", json={"query": "zebra", "top_k": 5})).json()
    assert [hit["id"] for hit in found["results"]] == ["d1"]

    assert b_process.output().count(REBUILT) == rebuilt_before, "B reloaded the namespace"

    # Emptying it is a whole-group change: B reloads and serves it empty.
    ok(a.post(f"{NS}/vectors/delete", json={"delete_all": True}))
    assert ids_near(b, [1.0, 1.0, 1.0]) == []
    assert ok(b.get(NS)).json()["vector_count"] == 0
