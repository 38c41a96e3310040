"""Namespace routes through the official SDK and raw HTTP (dakera-api.md §3.2, security.md):
lifecycle, the ``{namespaces, kinds}`` listing, name rules, the admin forms, events, and
isolation between keys restricted to other namespaces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import AuthorizationError, NotFoundError, ValidationError
from dakera.models import DistanceMetric

from tests.conftest import RunningServer


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A namespace name of this test's own on the shared server."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]
    return f"ns-{name}"


def make_key(http: httpx.Client, scope: str, namespaces: list[str] | None) -> str:
    answer = http.post(
        "/admin/keys", json={"name": f"k-{scope}", "scope": scope, "namespaces": namespaces}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["key"])


def test_create_get_list_configure_delete(client: DakeraClient, ns: str) -> None:
    created = client.create_namespace(ns, dimensions=8, distance="euclidean")
    assert created.name == ns and created.dimensions == 8 and created.kind == "data"
    info = client.get_namespace(ns)
    assert (info.name, info.dimensions, info.vector_count) == (ns, 8, 0)
    listed = {n.name: n.kind for n in client.list_namespaces()}
    assert listed[ns] == "data"
    client.upsert(ns, [{"id": "v1", "values": [0.5] * 8}])
    assert client.get_namespace(ns).vector_count == 1
    stats = client.get_index_stats(ns)
    assert stats.total_vectors == 1 and stats.dimensions == 8 and stats.index_type == "hnsw"
    configured = client.configure_namespace(ns, 8, distance=DistanceMetric.DOT_PRODUCT)
    assert configured.created is False and configured.distance.value == "dot_product"
    assert client.query(ns, [1.0] * 8, top_k=1).results[0].score == pytest.approx(4.0)
    client.delete_namespace(ns)
    assert ns not in {n.name for n in client.list_namespaces()}
    with pytest.raises(NotFoundError):
        client.get_namespace(ns)


def test_delete_answers_the_count_and_removes_the_data_for_good(
    http: httpx.Client, ns: str
) -> None:
    upserted = http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={"vectors": [{"id": f"v{i}", "values": [float(i), 1.0]} for i in range(5)]},
    )
    assert upserted.status_code == 200, upserted.text
    answer = http.delete(f"/v1/namespaces/{ns}")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"namespace": ns, "deleted": True, "vectors_deleted": 5}
    # Re-created under the same name, it starts empty (even with another dimension).
    again = http.post("/v1/namespaces", json={"name": ns, "dimension": 3})
    assert again.status_code == 201 and again.json()["vector_count"] == 0
    assert http.delete(f"/v1/namespaces/{ns}").json()["vectors_deleted"] == 0
    missing = http.delete(f"/v1/namespaces/{ns}")
    assert missing.status_code == 404 and missing.json()["code"] == "NAMESPACE_NOT_FOUND"


def test_create_twice_is_idempotent_and_a_dimension_conflict_is_400(
    http: httpx.Client, ns: str
) -> None:
    first = http.post("/v1/namespaces", json={"name": ns, "dimension": 4})
    assert first.status_code == 201 and first.json()["created"] is True
    second = http.post("/v1/namespaces", json={"name": ns, "dimension": 4})
    assert second.status_code == 200 and second.json()["created"] is False
    conflict = http.post("/v1/namespaces", json={"name": ns, "dimension": 5})
    assert conflict.status_code == 400 and conflict.json()["code"] == "DIMENSION_MISMATCH"
    put = http.put(f"/v1/namespaces/{ns}", json={"dimension": 6})
    assert put.status_code == 400 and put.json()["code"] == "DIMENSION_MISMATCH"
    assert "4" in put.json()["error"] and "6" in put.json()["error"]


def test_create_without_dimension_is_422_and_put_creates(http: httpx.Client, ns: str) -> None:
    missing = http.post("/v1/namespaces", json={"name": ns})
    assert missing.status_code == 422 and "dimension" in missing.json()["error"]
    put = http.put(f"/v1/namespaces/{ns}", json={"dimension": 3})
    assert put.status_code == 200
    assert put.json()["created"] is True and put.json()["namespace"] == ns


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("-leading-dash", "starting with a letter or digit"),
        ("has space", "only letters, digits"),
        ("dots.are.bad", "only letters, digits"),
        ("_internal", "starting with a letter or digit"),
        ("system_stuff", "reserved prefix"),
        ("admin_x", "reserved prefix"),
        ("x" * 129, "longer than 128"),
    ],
)
def test_bad_names_are_400_saying_why(http: httpx.Client, name: str, reason: str) -> None:
    answer = http.post("/v1/namespaces", json={"name": name, "dimension": 3})
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["error"]
    upsert = http.post(
        f"/v1/namespaces/{name}/vectors", json={"vectors": [{"id": "a", "values": [1.0]}]}
    )
    assert upsert.status_code in (400, 404)  # some names cannot even form a path
    assert name not in http.get("/v1/namespaces").json()["namespaces"]


def test_longest_name_is_fine(http: httpx.Client) -> None:
    name = "n" * 128
    assert http.post("/v1/namespaces", json={"name": name, "dimension": 2}).status_code == 201
    assert http.delete(f"/v1/namespaces/{name}").status_code == 200


def test_listing_is_the_object_form_with_agent_kinds(
    client: DakeraClient, http: httpx.Client, ns: str, agent_id: str
) -> None:
    client.store_memory(agent_id, "I like tea")
    client.create_namespace(ns, dimensions=2)
    body = http.get("/v1/namespaces").json()
    assert isinstance(body, dict) and set(body) == {"namespaces", "kinds"}
    assert body["kinds"][ns] == "data"
    assert body["kinds"][f"_dakera_agent_{agent_id}"] == "agent"
    assert body["namespaces"] == sorted(body["namespaces"])
    info = http.get(f"/v1/namespaces/_dakera_agent_{agent_id}").json()
    assert info["kind"] == "agent" and info["vector_count"] == 1 and info["dimension"] == 384
    refused = http.post(
        f"/v1/namespaces/_dakera_agent_{agent_id}/vectors",
        json={"vectors": [{"id": "x", "values": [1.0]}]},
    )
    assert refused.status_code == 400 and "memory routes" in refused.json()["error"]


def test_admin_forms_store_the_encryption_flag(http: httpx.Client, ns: str) -> None:
    # This shared server has no DAKERA_ENCRYPTION_KEY: an "encrypted" namespace is refused
    # rather than stored in plaintext (tests/security/test_encryption.py covers the keyed case).
    refused = http.post(
        "/admin/namespaces",
        json={"name": ns, "config": {"vector_index": "hnsw", "encryption": True}},
    )
    assert refused.status_code == 400 and "DAKERA_ENCRYPTION_KEY" in refused.json()["error"]
    created = http.post(
        "/admin/namespaces",
        json={"name": ns, "config": {"vector_index": "hnsw", "encryption": False}},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["config"] == {"vector_index": "hnsw", "encryption": False}
    assert body["dimension"] is None  # set by the first vector
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 2]}]})
    info = http.get(f"/v1/namespaces/{ns}").json()
    assert info["dimension"] == 2 and info["config"]["encryption"] is False
    listing = http.get("/v1/admin/namespaces").json()
    entry = next(n for n in listing["namespaces"] if n["name"] == ns)
    assert entry["config"]["encryption"] is False and listing["kinds"][ns] == "data"
    bad = http.post(
        "/v1/admin/namespaces", json={"name": ns + "x", "config": {"vector_index": "ivf"}}
    )
    assert bad.status_code == 400 and "vector_index" in bad.json()["error"]
    deleted = http.delete(f"/admin/namespaces/{ns}")
    assert deleted.status_code == 200 and deleted.json()["vectors_deleted"] == 1


def test_flat_namespaces_search_exactly(http: httpx.Client, ns: str) -> None:
    http.post("/v1/admin/namespaces", json={"name": ns, "config": {"vector_index": "flat"}})
    http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 0]}]})
    info = http.get(f"/v1/namespaces/{ns}").json()
    assert info["index_type"] == "flat" and info["search_backend"] == "exact"


def test_namespace_events_are_emitted(server: RunningServer, http: httpx.Client, ns: str) -> None:
    subscription = server.engine.events.subscribe(lambda e: e.namespace == ns)
    try:
        http.post("/v1/namespaces", json={"name": ns, "dimension": 2})
        http.post(f"/v1/namespaces/{ns}/vectors", json={"vectors": [{"id": "a", "values": [1, 0]}]})
        http.post(f"/v1/namespaces/{ns}/vectors/delete", json={"ids": ["a"]})
        http.delete(f"/v1/namespaces/{ns}")
        seen = []
        while not subscription.queue.empty():
            seen.append(subscription.queue.get_nowait())
    finally:
        subscription.close()
    kinds = [(e.event_type, e.details.get("op"), e.details.get("count")) for e in seen]
    assert kinds == [
        ("namespace_created", None, None),
        ("vectors_mutated", "upserted", 1),
        ("vectors_mutated", "deleted", 1),
        ("namespace_deleted", None, None),
    ]
    assert seen[0].details["dimension"] == 2


@pytest.fixture
def tenant(server: RunningServer, http: httpx.Client, ns: str) -> Iterator[dict[str, Any]]:
    """A write key granted only ``<ns>-mine``; ``<ns>-theirs`` exists and is the root's."""
    mine, theirs = f"{ns}-mine", f"{ns}-theirs"
    http.post("/v1/namespaces", json={"name": theirs, "dimension": 2})
    http.post(f"/v1/namespaces/{theirs}/vectors", json={"vectors": [{"id": "s", "values": [1, 0]}]})
    key = make_key(http, "write", [mine])
    with server.http(key) as scoped:
        yield {"http": scoped, "mine": mine, "theirs": theirs, "ghost": f"{ns}-ghost"}


def test_restricted_keys_see_only_their_namespaces(tenant: dict[str, Any]) -> None:
    scoped: httpx.Client = tenant["http"]
    assert (
        scoped.post(
            f"/v1/namespaces/{tenant['mine']}/vectors",
            json={"vectors": [{"id": "a", "values": [1, 0]}]},
        ).status_code
        == 200
    )
    listing = scoped.get("/v1/namespaces").json()
    assert listing["namespaces"] == [tenant["mine"]]
    assert set(listing["kinds"]) == {tenant["mine"]}


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "/query", {"vector": [1, 0]}),
        ("POST", "/vectors", {"vectors": [{"id": "x", "values": [1, 0]}]}),
        ("POST", "/vectors/delete", {"ids": ["s"]}),
        ("POST", "/vectors/bulk-delete", {"filter": {"a": 1}}),
        ("POST", "/vectors/count", {}),
        ("POST", "/upsert-text", {"documents": [{"id": "t", "text": "hello"}]}),
        ("POST", "/query-text", {"text": "hello"}),
        ("POST", "/fulltext/index", {"documents": [{"id": "t", "text": "hello"}]}),
        ("POST", "/fulltext/search", {"query": "hello"}),
        ("GET", "/fulltext/stats", None),
        ("POST", "/hybrid", {"text": "hello"}),
        ("POST", "/export", {}),
        ("POST", "/fetch", {"ids": ["s"]}),
        ("PUT", "", {"dimension": 2}),
    ],
)
def test_another_namespace_looks_exactly_like_a_missing_one(
    tenant: dict[str, Any], http: httpx.Client, method: str, suffix: str, body: Any
) -> None:
    scoped: httpx.Client = tenant["http"]
    hidden = scoped.request(method, f"/v1/namespaces/{tenant['theirs']}{suffix}", json=body)
    ghost = scoped.request(method, f"/v1/namespaces/{tenant['ghost']}{suffix}", json=body)
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["code"] == "NAMESPACE_NOT_FOUND"
    assert ghost.status_code == hidden.status_code
    assert ghost.json() == {
        **hidden.json(),
        "error": hidden.json()["error"].replace(tenant["theirs"], tenant["ghost"]),
    }
    # No side effects: the ghost was not created and the root's data is intact.
    assert tenant["ghost"] not in http.get("/v1/namespaces").json()["namespaces"]
    assert (
        http.post(f"/v1/namespaces/{tenant['theirs']}/vectors/count", json={}).json()["count"] == 1
    )


def test_scopes_of_namespace_routes(server: RunningServer, http: httpx.Client, ns: str) -> None:
    read_key, write_key = make_key(http, "read", None), make_key(http, "write", None)
    reader = DakeraClient(server.url, api_key=read_key)
    writer = DakeraClient(server.url, api_key=write_key)
    try:
        with pytest.raises(AuthorizationError):
            reader.create_namespace(ns, dimensions=2)
        writer.create_namespace(ns, dimensions=2)
        assert reader.get_namespace(ns).dimensions == 2
        with pytest.raises(AuthorizationError):
            writer.delete_namespace(ns)  # delete is admin
        with pytest.raises(ValidationError):
            writer.configure_namespace(ns, 3)
    finally:
        reader.close()
        writer.close()
