"""Vector routes through the official SDK and raw HTTP: upsert/query/delete, the Tier 2 routes,
input errors (always 400, never 500), and filtered search checked against brute force."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from dakera import DakeraClient
from dakera.models import F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.engine.vectors.test_filters import filters as filter_strategy
from tests.engine.vectors.test_filters import metadata as metadata_strategy
from tests.engine.vectors.test_filters import reference


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]
    return f"v-{name}"


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_upsert_query_replace_and_include_flags(client: DakeraClient, ns: str) -> None:
    assert client.upsert(
        ns,
        [
            {"id": "a", "values": [1, 0, 0], "metadata": {"k": "x"}},
            {"id": "b", "values": [0, 1, 0], "metadata": {"k": "y"}},
        ],
    ) == {"upserted_count": 2}
    result = client.query(ns, [1, 0.2, 0], top_k=5, include_values=True)
    assert [r.id for r in result.results] == ["a", "b"]
    assert result.results[0].values == pytest.approx([1, 0, 0])
    assert result.results[0].metadata == {"k": "x"}
    assert result.results[0].score > result.results[1].score
    bare = client.query(ns, [1, 0, 0], top_k=1, include_metadata=False)
    assert bare.results[0].metadata is None and bare.results[0].values is None
    # Upsert replaces by id: new vector and new metadata.
    client.upsert(ns, [{"id": "a", "values": [0, 0, 1], "metadata": {"k": "z"}}])
    top = client.query(ns, [0, 0, 1], top_k=1).results[0]
    assert (top.id, top.metadata) == ("a", {"k": "z"})
    assert client.get_namespace(ns).vector_count == 2


def test_raw_answer_names_the_values_field_vector(http: httpx.Client, ns: str) -> None:
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [3, 4]}]})
    body = http.post(
        f"/v1/namespaces/{ns}/query", json={"vector": [3, 4], "include_vectors": True}
    ).json()
    assert body["results"][0]["vector"] == pytest.approx([3, 4])
    assert body["results"][0]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["euclidean", "dot_product"])
def test_scores_are_higher_is_better_for_every_metric(
    http: httpx.Client, ns: str, metric: str
) -> None:
    http.post("/v1/namespaces", json={"name": ns, "dimension": 2, "distance": metric})
    http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={"vectors": [{"id": "near", "values": [1, 1]}, {"id": "far", "values": [-3, -3]}]},
    )
    results = http.post(f"/v1/namespaces/{ns}/query", json={"vector": [1, 1]}).json()["results"]
    assert [r["id"] for r in results] == ["near", "far"]
    expected = {"euclidean": -0.0, "dot_product": 2.0}[metric]
    assert results[0]["score"] == pytest.approx(expected, abs=1e-5)


def test_dimension_errors_name_both_dimensions(http: httpx.Client, ns: str) -> None:
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 2, 3]}]})
    upsert = http.post(
        f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "b", "values": [1, 2]}]}
    )
    query = http.post(f"/v1/namespaces/{ns}/query", json={"vector": [1, 2, 3, 4]})
    mixed = http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={"vectors": [{"id": "c", "values": [1, 2, 3]}, {"id": "d", "values": [1]}]},
    )
    for answer, (got, want) in ((upsert, (2, 3)), (query, (4, 3)), (mixed, (1, 3))):
        assert answer.status_code == 400 and answer.json()["code"] == "DIMENSION_MISMATCH"
        assert str(got) in answer.json()["error"] and str(want) in answer.json()["error"]
    # A rejected batch wrote nothing (all or nothing).
    assert http.post(f"/v1/namespaces/{ns}/vectors/count", json={}).json()["count"] == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"vectors":[{"id":"a","values":[1.0,NaN]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[Infinity,1.0]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[1e39,1.0]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[]}]}', "EMPTY_VECTOR"),
        (b'{"vectors":[{"id":"a","values":["1",2]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[true,2]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"","values":[1,2]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"values":[1,2]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[1,2]},{"id":"a","values":[1,2]}]}', "INVALID_REQUEST"),
        (b'{"vectors":[]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[1,2],"metadata":"nope"}]}', "INVALID_REQUEST"),
        (b'{"vectors":[{"id":"a","values":[1,2],"ttl_seconds":-1}]}', "INVALID_REQUEST"),
        (b'{"vectors": [', "INVALID_REQUEST"),
    ],
)
def test_bad_vectors_are_400_and_write_nothing(
    http: httpx.Client, ns: str, raw: bytes, code: str
) -> None:
    answer = http.post(
        f"/v1/namespaces/{ns}/vectors", content=raw, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    assert set(answer.json()) <= {"error", "code", "details"}
    assert ns not in http.get("/v1/namespaces").json()["namespaces"]


@pytest.mark.parametrize(
    "bad_filter",
    [
        {"a": {"$foo": 1}},
        {"$where": "1 == 1"},
        {"a": {"$in": 5}},
        {"a": {"$gt": {"x": 1}}},
        {"a": {"$regex": "(unclosed"}},
        {"$and": "nope"},
        {"$or": [1, 2]},
        {"a": {"$exists": 1}},
        {"a": {"$arrayContainsAny": "x"}},
        [1, 2, 3],
        "label = x",
        7,
    ],
)
def test_bad_filters_are_400_on_every_filtered_route(
    http: httpx.Client, ns: str, bad_filter: Any
) -> None:
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 0]}]})
    calls = [
        ("query", {"vector": [1, 0], "filter": bad_filter}),
        ("vectors/count", {"filter": bad_filter}),
        ("vectors/bulk-delete", {"filter": bad_filter}),
        ("vectors/bulk-update", {"filter": bad_filter, "update": {"x": 1}}),
        ("export", {"filter": bad_filter}),
        ("aggregate", {"filter": bad_filter}),
        ("hybrid", {"text": "x", "filter": bad_filter}),
        ("fulltext/search", {"query": "x", "filter": bad_filter}),
        ("batch-query", {"queries": [{"vector": [1, 0], "filter": bad_filter}]}),
        ("multi-vector", {"positive_vectors": [[1, 0]], "filter": bad_filter}),
    ]
    for route, body in calls:
        answer = http.post(f"/v1/namespaces/{ns}/{route}", json=body)
        assert answer.status_code == 400, (route, answer.text)
        assert answer.json()["code"] == "INVALID_REQUEST"
    assert http.post(f"/v1/namespaces/{ns}/vectors/count", json={}).json()["count"] == 1


def test_delete_by_ids_filter_and_all(client: DakeraClient, http: httpx.Client, ns: str) -> None:
    client.upsert(
        ns,
        [
            {"id": f"v{i}", "values": [1.0, float(i)], "metadata": {"i": i, "even": i % 2 == 0}}
            for i in range(10)
        ],
    )
    assert client.delete(ns, ids=["v0", "v1", "nope"]) == {"deleted_count": 2}
    assert client.delete(ns, filter={"even": True}) == {"deleted": 4, "failed": 0, "errors": []}
    assert client.count_vectors(ns) == {"count": 4, "namespace": ns}
    assert client.count_vectors(ns, filter={"i": F.gte(7)})["count"] == 2
    empty_filter = http.post(f"/v1/namespaces/{ns}/vectors/bulk-delete", json={"filter": {}})
    assert empty_filter.status_code == 400  # never "delete everything" by accident
    everything = http.post(f"/v1/namespaces/{ns}/vectors/delete", json={"delete_all": True})
    assert everything.json() == {"deleted_count": 4}
    assert client.count_vectors(ns)["count"] == 0
    assert client.query(ns, [1, 0]).results == []


def test_bulk_update_merges_metadata(client: DakeraClient, ns: str) -> None:
    client.upsert(
        ns,
        [
            {"id": "a", "values": [1, 0], "metadata": {"team": "red", "old": 1}},
            {"id": "b", "values": [0, 1], "metadata": {"team": "blue"}},
        ],
    )
    answer = client.bulk_update_vectors(ns, {"team": "red"}, {"score": 9, "old": None})
    assert answer == {"updated": 1, "failed": 0, "errors": []}
    hit = client.query(ns, [1, 0], top_k=1, include_values=True).results[0]
    assert hit.metadata == {"team": "red", "score": 9}
    assert hit.values == pytest.approx([1, 0])  # the vector is untouched


def test_fetch_export_pages_and_columns(http: httpx.Client, client: DakeraClient, ns: str) -> None:
    assert client.upsert_columns(
        ns, ["c", "a", "b"], [[1, 0], [0, 1], [1, 1]], attributes={"n": [3, 1, 2]}
    ) == {"upserted_count": 3}
    fetched = http.post(f"/v1/namespaces/{ns}/fetch", json={"ids": ["b", "zz"]}).json()
    assert fetched["vectors"] == [{"id": "b", "values": [1.0, 1.0], "metadata": {"n": 2}}]
    pages, cursor = [], None
    while True:
        page = client.export_vectors(ns, cursor=cursor, limit=2)
        pages.append([v["id"] for v in page["vectors"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["a", "b"], ["c"]]
    no_values = client.export_vectors(ns, include_vectors=False, filter={"n": F.gt(1)})
    assert [v["id"] for v in no_values["vectors"]] == ["b", "c"]
    assert "values" not in no_values["vectors"][0]
    bad = http.post(f"/v1/namespaces/{ns}/upsert-columns", json={"ids": ["x"], "vectors": []})
    assert bad.status_code == 400


def test_batch_multi_vector_unified_aggregate_explain_warm(
    client: DakeraClient, http: httpx.Client, ns: str
) -> None:
    client.upsert(
        ns,
        [
            {"id": "x1", "values": [1, 0, 0], "metadata": {"g": "a", "p": 10}},
            {"id": "x2", "values": [0.9, 0.1, 0], "metadata": {"g": "a", "p": 20}},
            {"id": "y1", "values": [0, 1, 0], "metadata": {"g": "b", "p": 5}},
        ],
    )
    batch = client.batch_query(
        ns,
        [
            {"vector": [1, 0, 0], "top_k": 1},
            {"vector": [0, 1, 0], "top_k": 2, "filter": {"g": "a"}},
        ],
    )
    assert [[r.id for r in b.results] for b in batch] == [["x1"], ["x2", "x1"]]
    multi = client.multi_vector_search(
        ns, [[1, 0, 0], [0, 1, 0]], negative=[[0.9, 0.1, 0]], top_k=3
    )
    assert [r["id"] for r in multi["results"]] == ["y1", "x2", "x1"]  # far from the negative
    diverse = client.multi_vector_search(ns, [[1, 0, 0]], top_k=2, mmr_lambda=0.1)
    assert diverse["mmr_applied"] is True
    assert [r["id"] for r in diverse["results"]] == ["x1", "y1"]
    unified = client.unified_query(ns, rank_by=["ANN", [1, 0, 0]], top_k=2)
    assert [r["id"] for r in unified["results"]] == ["x1", "x2"]
    assert unified["results"][0]["$dist"] == pytest.approx(0.0, abs=1e-6)
    by_price = client.unified_query(ns, rank_by=["p", "desc"], top_k=3)
    assert [r["id"] for r in by_price["results"]] == ["x2", "x1", "y1"]
    aggregated = client.aggregate(ns, group_by="g", metrics=["count", "avg:p", "max:p"])
    assert aggregated["aggregations"] == {"count": 3, "avg_p": pytest.approx(35 / 3), "max_p": 20}
    groups = {g["group"]["g"]: g for g in aggregated["groups"]}
    assert groups["a"]["count"] == 2 and groups["a"]["avg_p"] == 15
    plan = client.explain_query(ns, vector=[1, 0, 0], filter={"g": "a"}, execute=True)
    assert plan["search_backend"] == "exact" and plan["actual_stats"]["results_returned"] == 2
    warm = client.warm_cache(ns, vector_ids=["x1", "nope"])
    assert (warm.success, warm.entries_warmed, warm.entries_skipped) == (True, 1, 1)
    bad_tier = http.post(f"/v1/namespaces/{ns}/cache/warm", json={"target_tier": "l9"})
    assert bad_tier.status_code == 400
    bad_rank = http.post(f"/v1/namespaces/{ns}/unified-query", json={"rank_by": ["Nope", 1]})
    assert bad_rank.status_code == 400


def test_missing_namespace_is_404_for_reads(http: httpx.Client) -> None:
    for route, body in (("query", {"vector": [1.0]}), ("vectors/count", {}), ("export", {})):
        answer = http.post(f"/v1/namespaces/never-made-xyz/{route}", json=body)
        assert answer.status_code == 404 and answer.json()["code"] == "NAMESPACE_NOT_FOUND"


def test_ttl_hides_expired_vectors(server: RunningServer, http: httpx.Client, ns: str) -> None:
    http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={
            "vectors": [
                {"id": "short", "values": [1, 0], "ttl_seconds": 1},
                {"id": "long", "values": [1, 0.1]},
            ]
        },
    )
    # The real clock, not a poke at the in-memory record: on a shared store the node's caches
    # are reloaded from the rows (the follower), which would undo such a poke.
    first = http.post(f"/v1/namespaces/{ns}/query", json={"vector": [1, 0]}).json()["results"]
    assert {r["id"] for r in first} <= {"short", "long"}
    deadline = time.monotonic() + 10
    while True:
        results = http.post(f"/v1/namespaces/{ns}/query", json={"vector": [1, 0]}).json()
        if [r["id"] for r in results["results"]] == ["long"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [r["id"] for r in results["results"]] == ["long"]
    assert http.post(f"/v1/namespaces/{ns}/vectors/count", json={}).json()["count"] == 1


# --- filtered search = brute force ----------------------------------------------------------


@pytest.fixture(scope="module")
def hnsw_server(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
    fresh_storage: Callable[[], dict[str, Any]],
) -> Iterator[RunningServer]:
    """A server whose namespaces switch to HNSW above 300 vectors."""
    running = start_server(
        tmp_path_factory.mktemp("hnsw"), embedder, exact_search_threshold=300, **fresh_storage()
    )
    yield running
    running.stop()


def test_filtered_hnsw_query_returns_k_when_k_match(hnsw_server: RunningServer) -> None:
    rng = np.random.default_rng(7)
    vectors = unit(rng, 3000, 16)
    with hnsw_server.http() as http:
        for start in range(0, 3000, 1000):
            http.post(
                "/v1/namespaces/big/vectors",
                json={
                    "vectors": [
                        {
                            "id": f"v{i}",
                            "values": vectors[i].tolist(),
                            "metadata": {"bucket": i % 100},
                        }
                        for i in range(start, start + 1000)
                    ]
                },
            ).raise_for_status()
        assert http.get("/v1/namespaces/big").json()["search_backend"] == "hnsw"
        for bucket in (3, 42):  # 30 of 3000 match: far too rare for post-filtering top-k
            query = unit(rng, 1, 16)[0]
            results = http.post(
                "/v1/namespaces/big/query",
                json={"vector": query.tolist(), "top_k": 10, "filter": {"bucket": bucket}},
            ).json()["results"]
            allowed = [i for i in range(3000) if i % 100 == bucket]
            exact = sorted(allowed, key=lambda i: -float(vectors[i] @ query))[:10]
            assert [r["id"] for r in results] == [f"v{i}" for i in exact]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    records=st.lists(metadata_strategy, min_size=1, max_size=40),
    spec=filter_strategy,
    k=st.integers(1, 12),
)
def test_filtered_queries_equal_exact_search(
    server: RunningServer, data: st.DataObject, records: list[dict[str, Any]], spec: Any, k: int
) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vectors = unit(rng, len(records), 6)
    query = unit(rng, 1, 6)[0]
    name = f"prop-{seed}"
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ROOT_KEY}"}, timeout=30
    ) as http:
        http.post(
            f"/v1/namespaces/{name}/vectors",
            json={
                "vectors": [
                    {"id": f"r{i}", "values": vectors[i].tolist(), "metadata": records[i]}
                    for i in range(len(records))
                ]
            },
        ).raise_for_status()
        try:
            answer = http.post(
                f"/v1/namespaces/{name}/query",
                json={"vector": query.tolist(), "top_k": k, "filter": spec},
            )
            assert answer.status_code == 200, answer.text
            got = [(r["id"], r["score"]) for r in answer.json()["results"]]
            count = http.post(f"/v1/namespaces/{name}/vectors/count", json={"filter": spec})
        finally:
            http.delete(f"/v1/namespaces/{name}")
    passing = [i for i in range(len(records)) if reference(spec, records[i])]
    expected = sorted((float(vectors[i] @ query), i) for i in passing)[::-1][:k]
    assert len(got) == len(expected)
    assert all(int(record_id[1:]) in passing for record_id, _ in got)
    assert [s for _, s in got] == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert count.json()["count"] == len(passing)
