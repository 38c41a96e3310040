"""Knowledge graph through the real server and the official SDK (dakera-api.md §3.12, §4.2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import AuthorizationError, DakeraError, NotFoundError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

PARAPHRASE_A = "The user's favourite drink is a flat white with oat milk every morning."
PARAPHRASE_B = "Every morning the user's favourite drink is a flat white made with oat milk."


def store(client: Any, agent: str, text: str) -> str:
    memory_id: str = client.store_memory(agent, text)["id"]
    return memory_id


def key_for(http: httpx.Client, scope: str, namespaces: list[str] | None = None) -> str:
    body: dict[str, Any] = {"name": f"graph-{scope}", "scope": scope}
    if namespaces is not None:
        body["namespaces"] = namespaces
    created = http.post("/admin/keys", json=body)
    assert created.status_code in (200, 201), created.text
    secret: str = created.json()["key"]
    return secret


def edge_set(edges: list[Any]) -> set[tuple[str, str, str]]:
    return {(e.source_id, e.target_id, str(e.edge_type.value)) for e in edges}


def test_link_graph_path_export_and_query_round_trip(
    client: Any, http: httpx.Client, agent_id: str
) -> None:
    a = store(client, agent_id, "Booked flights to Lisbon for the conference")
    b = store(client, agent_id, "The dentist appointment moved to Thursday afternoon")
    c = store(client, agent_id, "Bought a new pair of running shoes")
    link = client.memory_link(a, b, agent_id=agent_id, label="same week")
    assert (link.from_id, link.to_id, link.edge_type) == (a, b, "linked_by")
    assert link.edge.source_id == a
    client.memory_link(b, c, agent_id=agent_id)

    graph = client.memory_graph(a, depth=2)
    assert graph.root_id == a
    assert {(a, b, "linked_by"), (b, c, "linked_by")} <= edge_set(graph.edges)
    depths = {n.memory_id: n.depth for n in graph.nodes}
    assert depths == {a: 0, b: 1, c: 2}
    assert client.memory_graph(a, depth=2, types=["linked_by"]).edges
    one_hop = client.memory_graph(a, depth=1)
    assert {n.memory_id for n in one_hop.nodes} == {a, b}

    path = client.memory_path(a, c)
    assert path.path == [a, b, c] and path.hops == 2
    assert client.memory_path(c, a).path == [c, b, a]  # associations are followed both ways

    export = client.agent_graph_export(agent_id)
    assert export.namespace == f"_dakera_agent_{agent_id}"
    assert export.node_count == 3 and export.edge_count >= 2
    assert (a, b, "linked_by") in edge_set(export.edges)

    linked = client.knowledge_query(agent_id, edge_type="linked_by")
    assert edge_set(linked.edges) == {(a, b, "linked_by"), (b, c, "linked_by")}
    assert linked.node_count == 3 and linked.edge_count == 2
    rooted = client.knowledge_query(agent_id, root_id=a, edge_type="linked_by", max_depth=1)
    assert edge_set(rooted.edges) == {(a, b, "linked_by")}
    assert client.knowledge_query(agent_id, edge_type="linked_by", limit=1).edge_count == 1

    kg_path = client.knowledge_path(agent_id, a, c)
    assert (kg_path.from_id, kg_path.to_id, kg_path.hop_count) == (a, c, 2)
    assert kg_path.path == [a, b, c]

    exported = client.knowledge_export(agent_id)
    assert exported.format == "json" and (a, b, "linked_by") in edge_set(exported.edges)

    raw = http.get("/v1/knowledge/export", params={"agent_id": agent_id, "format": "graphml"})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(raw.content)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    nodes = {n.get("id") for n in root.iterfind(".//g:node", ns)}
    assert {a, b, c} <= nodes
    pairs = {(e.get("source"), e.get("target")) for e in root.iterfind(".//g:edge", ns)}
    assert (a, b) in pairs and (b, c) in pairs


def test_link_answer_is_flat_and_idempotent(http: httpx.Client, client: Any, agent_id: str) -> None:
    a = store(client, agent_id, "Planted tomatoes in the garden")
    b = store(client, agent_id, "Repainted the kitchen walls blue")
    body = {"target_id": b, "agent_id": agent_id, "label": "weekend"}
    first = http.post(f"/v1/memories/{a}/links", json=body)
    assert first.status_code == 200
    answer = first.json()
    assert "error" not in answer and "edge" not in answer
    assert answer["from_id"] == a and answer["to_id"] == b and answer["edge_type"] == "linked_by"
    assert answer["weight"] == 1.0 and answer["label"] == "weekend"
    again = http.post(f"/v1/memories/{a}/links", json={**body, "label": "chores"}).json()
    assert again["label"] == "chores"
    linked = client.knowledge_query(agent_id, edge_type="linked_by")
    assert linked.edge_count == 1


def test_link_refusals(http: httpx.Client, client: Any, agent_id: str) -> None:
    a = store(client, agent_id, "Renewed the passport at the city office")
    b = store(client, agent_id, "Cancelled the gym membership")
    other_agent = f"{agent_id}-other"
    foreign = store(client, other_agent, "A memory of a different agent")

    missing = http.post(f"/v1/memories/{a}/links", json={"target_id": b})
    assert missing.status_code == 422
    assert missing.json()["code"] == "UNPROCESSABLE_CONTENT"
    unknown = http.post(
        f"/v1/memories/{a}/links", json={"target_id": "mem_nope", "agent_id": agent_id}
    )
    assert unknown.status_code == 404
    itself = http.post(f"/v1/memories/{a}/links", json={"target_id": a, "agent_id": agent_id})
    assert itself.status_code == 400
    across = http.post(f"/v1/memories/{a}/links", json={"target_id": foreign, "agent_id": agent_id})
    assert across.status_code == 400
    assert "another agent" in across.json()["error"]
    with pytest.raises(ValueError):
        client.memory_link(a, b, agent_id="")


def test_near_duplicates_get_related_to_edges(
    http: httpx.Client, client: Any, agent_id: str
) -> None:
    first = store(client, agent_id, PARAPHRASE_A)
    second = store(client, agent_id, PARAPHRASE_B)
    unrelated = store(client, agent_id, "Quarterly tax forms must be filed before April")
    graph = http.get(f"/v1/memories/{second}/graph", params={"edge_types": "similar_to"}).json()
    edges = [e for n in graph["nodes"] for e in n["edges"]]
    assert [(e["from_id"], e["to_id"], e["edge_type"]) for e in edges] == [
        (second, first, "related_to")
    ]
    assert 0.85 <= edges[0]["weight"] <= 1.0
    assert unrelated not in {n["memory_id"] for n in graph["nodes"]}
    bad = http.get(f"/v1/memories/{second}/graph", params={"edge_types": "friends_with"})
    assert bad.status_code == 400


def test_memories_mentioning_the_same_entity_are_linked(
    http: httpx.Client, client: Any, agent_id: str
) -> None:
    first = store(client, agent_id, "Caroline adopted a golden retriever puppy in Lisbon.")
    second = store(client, agent_id, "The quarterly budget review went well.")
    third = store(client, agent_id, "Caroline starts her counseling course on 7 May 2023.")
    shared = client.knowledge_query(agent_id, edge_type="shares_entity")
    assert [(e.source_id, e.target_id) for e in shared.edges] == [(third, first)]
    graph = client.memory_graph(third, depth=1)
    assert second not in {n.memory_id for n in graph.nodes}
    export = http.get(f"/v1/agents/{agent_id}/graph/export").json()
    caroline = next(e for e in export["entities"] if e["value"] == "Caroline")
    assert caroline["id"] == "entity:person:caroline"
    assert set(caroline["memory_ids"]) == {first, third}


def test_forget_removes_a_memorys_edges(client: Any, agent_id: str) -> None:
    a = store(client, agent_id, "Signed the lease for the new apartment")
    b = store(client, agent_id, "Ordered a sofa for the living room")
    client.memory_link(a, b, agent_id=agent_id)
    client.forget(agent_id, b)
    assert client.agent_graph_export(agent_id).edge_count == 0
    assert [n.memory_id for n in client.memory_graph(a, depth=3).nodes] == [a]
    with pytest.raises(NotFoundError):
        client.memory_path(a, b)


def test_paths_depths_and_unknown_memories(http: httpx.Client, client: Any, agent_id: str) -> None:
    a = store(client, agent_id, "Visited the dentist for a cleaning")
    b = store(client, agent_id, "Took the car in for an oil change")
    with pytest.raises(NotFoundError):
        client.memory_path(a, b)  # no edge between them
    with pytest.raises(NotFoundError):
        client.knowledge_path(agent_id, a, b)
    with pytest.raises(NotFoundError):
        client.memory_graph("mem_unknown")
    assert http.get(f"/v1/memories/{a}/graph", params={"depth": 9}).json()["depth"] == 5
    assert http.get(f"/v1/memories/{a}/graph", params={"depth": -1}).status_code == 400
    assert http.get(f"/v1/memories/{a}/path").status_code == 400
    assert client.memory_path(a, a).path == [a]
    empty = client.knowledge_query("agent-without-memories")
    assert empty.edge_count == 0 and empty.agent_id == "agent-without-memories"
    too_many = http.get("/v1/knowledge/query", params={"agent_id": agent_id, "limit": 5000})
    assert too_many.status_code == 400


def test_keys_see_only_their_agents_graphs(
    server: RunningServer, http: httpx.Client, client: Any, agent_id: str
) -> None:
    mine, theirs = f"{agent_id}-mine", f"{agent_id}-theirs"
    m1 = store(client, mine, "Started learning the cello")
    m2 = store(client, mine, "Joined a community orchestra")
    t1 = store(client, theirs, "Secret plans of another tenant")
    client.memory_link(m1, m2, agent_id=mine)
    reader = key_for(http, "read", [f"_dakera_agent_{mine}"])
    with DakeraClient(server.url, api_key=reader) as scoped:
        assert scoped.memory_graph(m1, depth=1).root_id == m1
        assert scoped.memory_entities(m1).memory_id == m1
        for call in (
            lambda: scoped.memory_graph(t1),
            lambda: scoped.memory_entities(t1),
            lambda: scoped.memory_path(m1, t1),
        ):
            with pytest.raises(NotFoundError):
                call()
        assert scoped.agent_graph_export(theirs).edge_count == 0
        with pytest.raises(AuthorizationError):
            scoped.memory_link(m1, m2, agent_id=mine)  # a read key cannot write


def test_similarity_views(client: Any, agent_id: str) -> None:
    first = store(client, agent_id, PARAPHRASE_A)
    second = store(client, agent_id, PARAPHRASE_B)
    store(client, agent_id, "The car needs new winter tyres before December")
    seeded = client.knowledge_graph(agent_id, first, depth=1, min_similarity=0.8)
    assert {n["id"] for n in seeded["nodes"]} == {first, second}
    assert {"id", "content", "memory_type", "importance", "metadata"} <= set(seeded["nodes"][0])
    assert any(
        {e["source"], e["target"]} == {first, second} and e["similarity"] >= 0.85
        for e in seeded["edges"]
    )
    full = client.full_knowledge_graph(agent_id, content_preview_chars=12, cluster_threshold=0.85)
    assert full["stats"]["node_count"] == 3
    assert all(n["content_len"] > 12 and n["content_truncated"] for n in full["nodes"])
    assert all(len(n["content"]) == 12 for n in full["nodes"])
    assert [sorted(c) for c in full["clusters"]] == [sorted([first, second])]


def test_summarize_stores_a_linked_summary(http: httpx.Client, client: Any, agent_id: str) -> None:
    ids = [
        store(client, agent_id, "Anna moved to Porto in March. She works as a nurse."),
        store(client, agent_id, "Anna loves surfing in Porto on weekends."),
        store(client, agent_id, "Anna's brother visited her in Porto last month."),
    ]
    answer = client.summarize(agent_id, ids, target_type="semantic")
    assert answer["source_count"] == 3
    summary = client.get_memory(agent_id, answer["new_memory_id"])
    assert summary["content"] == answer["summary"] and "Porto" in answer["summary"]
    assert summary["memory_type"] == "semantic"
    assert summary["metadata"]["summary_of"] == ids
    links = client.knowledge_query(agent_id, root_id=answer["new_memory_id"], edge_type="linked_by")
    assert {e.target_id for e in links.edges} == set(ids)
    one = http.post("/v1/knowledge/summarize", json={"agent_id": agent_id, "memory_ids": ids[:1]})
    assert one.status_code == 400
    with pytest.raises(NotFoundError):
        client.summarize(agent_id, [ids[0], "mem_unknown"])


def test_cross_agent_network(
    server: RunningServer, http: httpx.Client, client: Any, agent_id: str
) -> None:
    left, right = f"{agent_id}-left", f"{agent_id}-right"
    store(client, left, PARAPHRASE_A)
    store(client, right, PARAPHRASE_B)
    store(client, right, "The server room air conditioning failed overnight")
    network = client.cross_agent_network(agent_ids=[left, right], min_similarity=0.8)
    assert {a.agent_id for a in network.agents} == {left, right}
    assert network.stats.total_agents == 2 and network.stats.total_nodes == 3
    assert network.node_count == 3 and all(n.created_at > 0 for n in network.nodes)
    assert [(e.source_agent, e.target_agent) for e in network.edges] == [(left, right)]
    assert network.edges[0].similarity >= 0.85
    assert network.stats.total_cross_edges == 1 and 0 < network.stats.density <= 1
    writer = key_for(http, "write")
    with DakeraClient(server.url, api_key=writer) as scoped, pytest.raises(AuthorizationError):
        scoped.cross_agent_network(agent_ids=[left, right])
    admin_left = key_for(http, "admin", [f"_dakera_agent_{left}"])
    with DakeraClient(server.url, api_key=admin_left) as scoped:
        seen = scoped.cross_agent_network(agent_ids=[left, right], min_similarity=0.8)
        assert [a.agent_id for a in seen.agents] == [left] and seen.edges == []
    bad = http.post("/v1/knowledge/network/cross-agent", json={"min_similarity": 3})
    assert bad.status_code == 400
    with pytest.raises(DakeraError):
        client.cross_agent_network(max_nodes_per_agent=0)


@pytest.mark.slow
def test_graph_and_entities_survive_a_restart(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    running = start_server(tmp_path, embedder)
    with DakeraClient(running.url, api_key=ROOT_KEY) as client:
        a = store(client, "keeper", "Caroline flew to Berlin on 3 June 2023.")
        b = store(client, "keeper", "Caroline met OpenAI engineers in Berlin.")
        client.memory_link(a, b, agent_id="keeper", label="trip")
        before = edge_set(client.agent_graph_export("keeper").edges)
        entities = client.memory_entities(b).entities
    running.stop()
    assert (a, b, "linked_by") in before and (b, a, "shares_entity") in before
    again = start_server(tmp_path, embedder)
    try:
        with DakeraClient(again.url, api_key=ROOT_KEY) as client:
            assert edge_set(client.agent_graph_export("keeper").edges) == before
            assert client.memory_entities(b).entities == entities
            c = store(client, "keeper", "Back from Berlin with Caroline's souvenirs.")
            shared = client.knowledge_query("keeper", root_id=c, edge_type="shares_entity")
            assert {e.target_id for e in shared.edges} == {a, b}
    finally:
        again.stop()


def test_validation_errors_are_400(http: httpx.Client, client: Any, agent_id: str) -> None:
    a = store(client, agent_id, "A memory for validation checks")
    assert http.post("/v1/knowledge/graph", json={"agent_id": agent_id}).status_code == 400
    assert (
        http.post(
            "/v1/knowledge/graph", json={"agent_id": agent_id, "memory_id": a, "depth": 7}
        ).status_code
        == 400
    )
    assert (
        http.post(
            "/v1/knowledge/graph/full", json={"agent_id": agent_id, "max_nodes": 0}
        ).status_code
        == 400
    )
    assert (
        http.get("/v1/knowledge/export", params={"agent_id": agent_id, "format": "csv"}).status_code
        == 400
    )
    with pytest.raises(ValidationError):
        client.knowledge_query(agent_id, max_depth=0)
