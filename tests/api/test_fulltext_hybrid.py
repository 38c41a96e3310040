"""Text routes through the SDK and raw HTTP: server-side embedding (with zero-padding into wider
namespaces), BM25 full text (stemming, stop words, stats, delete) and hybrid fusion."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from dakera import DakeraClient
from dakera.exceptions import NotFoundError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider

DOCS = [
    ("cats", "The cat was running across the garden chasing birds"),
    ("stocks", "Stock markets fell sharply after the interest rate decision"),
    ("pasta", "Cook the pasta in salted water for nine minutes"),
    ("runner", "She runs a marathon every spring in Boston"),
]


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]
    return f"t-{name}"


def test_upsert_text_into_a_1024_namespace_is_zero_padded(
    client: DakeraClient, http: httpx.Client, embedder: EmbeddingProvider, ns: str
) -> None:
    client.create_namespace(ns, dimensions=1024)
    answer = client.upsert_text(ns, [{"id": i, "text": t} for i, t in DOCS])
    assert answer.upserted_count == 4 and answer.tokens_processed > 20
    assert answer.model.value == embedder.model_name  # the model really used
    hit = http.post(
        f"/v1/namespaces/{ns}/query-text",
        json={"text": "a kitten chasing sparrows", "top_k": 1, "include_vectors": True},
    ).json()["results"][0]
    assert hit["id"] == "cats" and len(hit["vector"]) == 1024
    assert not any(hit["vector"][384:])  # zero-padded beyond the model's 384 dimensions
    expected = embedder.embed_one(DOCS[0][1])
    assert np.allclose(hit["vector"][:384], expected, atol=1e-6)
    # Cosine is unchanged by the padding: same score as the model's own similarity.
    query = embedder.embed_one("a kitten chasing sparrows")
    assert hit["score"] == pytest.approx(float(query @ expected), abs=1e-5)


def test_query_text_returns_text_and_hides_it_from_metadata(client: DakeraClient, ns: str) -> None:
    client.upsert_text(ns, [{"id": "p", "text": DOCS[2][1], "metadata": {"kind": "recipe"}}])
    found = client.query_text(ns, "how long to boil noodles", top_k=1)
    assert found.model.value and found.results[0].id == "p"
    assert found.results[0].text == DOCS[2][1]
    assert found.results[0].metadata == {"kind": "recipe"}
    quiet = client.query_text(ns, "noodles", include_text=False)
    assert quiet.results[0].text is None
    assert client.get_namespace(ns).dimensions == 384  # auto-created at the model's width


def test_batch_query_text_keeps_query_order(client: DakeraClient, ns: str) -> None:
    client.upsert_text(ns, [{"id": i, "text": t} for i, t in DOCS])
    answer = client.batch_query_text(ns, ["equities dropped", "feline", "spaghetti"], top_k=1)
    assert [r[0].id for r in answer.results] == ["stocks", "cats", "pasta"]


def test_text_into_a_narrower_namespace_is_a_400(client: DakeraClient, ns: str) -> None:
    client.create_namespace(ns, dimensions=128)
    with pytest.raises(ValidationError, match="smaller than the 384"):
        client.upsert_text(ns, [{"id": "a", "text": "hello"}])
    with pytest.raises(ValidationError, match="smaller than the 384"):
        client.query_text(ns, "hello")


def test_a_model_the_server_does_not_run_is_a_400(http: httpx.Client, ns: str) -> None:
    refused = http.post(
        f"/v1/namespaces/{ns}/upsert-text",
        json={"documents": [{"id": "a", "text": "x"}], "model": "bge-large"},
    )
    assert refused.status_code == 400 and "bge-large" in refused.json()["error"]
    alias = http.post(
        f"/v1/namespaces/{ns}/upsert-text",
        json={"documents": [{"id": "a", "text": "x"}], "model": "minilm"},
    )
    assert alias.status_code == 200


def test_bm25_stems_and_drops_stop_words(client: DakeraClient, ns: str) -> None:
    assert client.index_documents(ns, [{"id": i, "content": t} for i, t in DOCS]) == {
        "indexed_count": 4
    }
    hits = client.fulltext_search(ns, "running")  # "running" and "runs" share the stem "run"
    assert {h.id for h in hits} == {"cats", "runner"}
    assert hits[0].content in (DOCS[0][1], DOCS[3][1])
    assert client.fulltext_search(ns, "the of and") == []  # stop words only
    filtered = client.fulltext_search(ns, "running", filter={"missing": {"$exists": True}})
    assert filtered == []


def test_fulltext_stats_has_the_three_keys_and_zeros_when_empty(
    client: DakeraClient, http: httpx.Client, ns: str
) -> None:
    client.upsert(ns, [{"id": "v", "values": [1.0, 0.0]}])  # vectors only
    stats = client.fulltext_stats(ns)
    assert (stats.document_count, stats.unique_terms, stats.avg_doc_length) == (0, 0, 0.0)
    client.index_documents(
        ns, [{"id": "a", "text": "apples and pears"}, {"id": "b", "text": "pears"}]
    )
    stats = client.fulltext_stats(ns)
    assert stats.document_count == 2 and stats.unique_terms == 2  # appl, pear
    assert stats.avg_doc_length == pytest.approx(1.5)
    with pytest.raises(NotFoundError):
        client.fulltext_stats("never-made-fts")


def test_fulltext_delete_removes_text_but_keeps_vectors(client: DakeraClient, ns: str) -> None:
    client.upsert(ns, [{"id": "a", "values": [1.0, 0.0]}])
    client.index_documents(ns, [{"id": "a", "text": "alpha"}, {"id": "b", "text": "alpha beta"}])
    assert client.fulltext_delete(ns, ["a", "b", "zzz"]) == {"deleted_count": 2}
    assert client.fulltext_search(ns, "alpha") == []
    assert client.count_vectors(ns)["count"] == 1  # the vector of "a" stays
    assert client.fulltext_stats(ns).document_count == 0


def test_hybrid_without_vector_is_bm25_only(client: DakeraClient, ns: str) -> None:
    client.upsert_text(ns, [{"id": i, "text": t} for i, t in DOCS])
    hybrid = client.hybrid_search(ns, "stock markets")
    bm25 = client.fulltext_search(ns, "stock markets")
    assert [h.id for h in hybrid] == [h.id for h in bm25] == ["stocks"]
    assert hybrid[0].vector_score == 0 and hybrid[0].score == hybrid[0].text_score
    assert hybrid[0].text_score == pytest.approx(bm25[0].score)


def test_hybrid_weight_moves_between_vector_and_text_order(http: httpx.Client, ns: str) -> None:
    # Vectors point one way, texts the other, so the weight decides the winner.
    http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={
            "vectors": [
                {"id": "v-wins", "values": [1.0, 0.0]},
                {"id": "t-wins", "values": [0.0, 1.0]},
            ]
        },
    )
    http.post(
        f"/v1/namespaces/{ns}/fulltext/index",
        json={
            "documents": [
                {"id": "v-wins", "text": "unrelated words"},
                {"id": "t-wins", "text": "quantum entanglement explained"},
            ]
        },
    )

    def order(weight: float, fusion: str = "minmax") -> list[str]:
        body = {
            "text": "quantum entanglement",
            "vector": [1.0, 0.0],
            "vector_weight": weight,
            "fusion": fusion,
        }
        results = http.post(f"/v1/namespaces/{ns}/hybrid", json=body).json()["results"]
        return [r["id"] for r in results]

    assert order(1.0) == ["v-wins", "t-wins"]
    assert order(0.0) == ["t-wins", "v-wins"]
    # RRF ranks: v-wins is 1st by vector only; t-wins 2nd by vector and 1st by text.
    assert order(1.0, "rrf") == ["v-wins", "t-wins"]
    assert order(0.9, "rrf") == ["t-wins", "v-wins"]  # 0.9/62 + 0.1/61 > 0.9/61
    full = http.post(
        f"/v1/namespaces/{ns}/hybrid",
        json={"text": "quantum", "vector": [1.0, 0.0], "vector_weight": 0.5},
    ).json()["results"]
    by_id = {r["id"]: r for r in full}
    assert by_id["v-wins"]["vector_score"] == pytest.approx(1.0)
    assert by_id["t-wins"]["text_score"] > 0 and by_id["v-wins"]["text_score"] == 0
    assert by_id["t-wins"]["content"] == "quantum entanglement explained"


@pytest.mark.parametrize(
    "body",
    [
        {"text": "x", "vector_weight": 1.5},
        {"text": "x", "vector_weight": "half"},
        {"text": "x", "fusion": "borda"},
        {"text": ""},
        {"vector": [1.0, 0.0]},
        {"text": "x", "vector": [1.0, 0.0, 0.0]},
        {"text": "x", "top_k": 0},
    ],
)
def test_bad_hybrid_requests_are_400(http: httpx.Client, ns: str, body: dict[str, object]) -> None:
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 0]}]})
    answer = http.post(f"/v1/namespaces/{ns}/hybrid", json=body)
    assert answer.status_code == 400, answer.text
