"""gRPC ``dakera.v1.VectorService`` with a real grpcio client against the real server: auth by
``x-api-key``, the same engine as REST, and scopes taken from the REST route table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import orjson
import pytest

from dakera_server import API_VERSION
from dakera_server.api.scopes import scope_table
from dakera_server.engine.access import Scope
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.grpc.generated import vectors_pb2 as pb
from dakera_server.grpc.generated import vectors_pb2_grpc as pb_grpc
from dakera_server.grpc.servicer import RPC_ROUTES, rpc_scopes
from tests.conftest import ROOT_KEY, RunningServer, start_server

ROOT = (("x-api-key", ROOT_KEY),)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[tuple[RunningServer, Any]]:
    running = start_server(tmp_path_factory.mktemp("grpc"), embedder)
    app = running.uvicorn_server.config.app
    port = app.state.grpc_server.port
    assert port, "the gRPC server did not bind"
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield running, pb_grpc.VectorServiceStub(channel)
    channel.close()
    running.stop()


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()  # type: ignore[no-any-return,attr-defined]


def test_health_needs_no_key(served: tuple[RunningServer, Any]) -> None:
    _, stub = served
    answer = stub.Health(pb.HealthRequest())
    assert (answer.status, answer.version) == ("healthy", API_VERSION)


@pytest.mark.parametrize("metadata", [(), (("x-api-key", "dk_wrong"),), (("x-api-key", ""),)])
def test_missing_or_wrong_key_is_unauthenticated(
    served: tuple[RunningServer, Any], metadata: tuple[tuple[str, str], ...]
) -> None:
    _, stub = served
    calls = [
        lambda: stub.GetNamespace(pb.GetNamespaceRequest(namespace="g"), metadata=metadata),
        lambda: stub.Upsert(pb.UpsertRequest(namespace="g"), metadata=metadata),
        lambda: stub.Query(pb.QueryRequest(namespace="g", vector=[1.0]), metadata=metadata),
        lambda: stub.DeleteVectors(pb.DeleteVectorsRequest(namespace="g"), metadata=metadata),
        lambda: stub.WarmCache(pb.WarmCacheRequest(namespace="g"), metadata=metadata),
        lambda: stub.DeleteNamespace(pb.DeleteNamespaceRequest(namespace="g"), metadata=metadata),
    ]
    for call in calls:
        assert code_of(call) == grpc.StatusCode.UNAUTHENTICATED


def test_round_trip_shares_the_engine_with_rest(served: tuple[RunningServer, Any]) -> None:
    running, stub = served
    vectors = [
        pb.ProtoVector(id="a", values=[1, 0, 0], metadata_json='{"k": "x"}'),
        pb.ProtoVector(id="b", values=[0, 1, 0]),
    ]
    upserted = stub.Upsert(pb.UpsertRequest(namespace="g-ns", vectors=vectors), metadata=ROOT)
    assert upserted.upserted_count == 2
    info = stub.GetNamespace(pb.GetNamespaceRequest(namespace="g-ns"), metadata=ROOT)
    assert (info.name, info.vector_count, info.dimension) == ("g-ns", 2, 3)
    found = stub.Query(
        pb.QueryRequest(
            namespace="g-ns",
            vector=[1, 0.1, 0],
            top_k=2,
            include_metadata=True,
            include_vectors=True,
        ),
        metadata=ROOT,
    )
    assert [r.id for r in found.results] == ["a", "b"]
    assert orjson.loads(found.results[0].metadata_json) == {"k": "x"}
    assert list(found.results[0].values) == pytest.approx([1, 0, 0])
    with running.http() as http:  # REST sees what gRPC wrote, and the other way round
        rest = http.post("/v1/namespaces/g-ns/query", json={"vector": [1, 0.1, 0]}).json()
        assert [r["id"] for r in rest["results"]] == ["a", "b"]
        assert rest["results"][0]["score"] == pytest.approx(found.results[0].score, abs=1e-6)
        http.post(
            "/v1/namespaces/g-ns/vectors", json={"vectors": [{"id": "c", "values": [0, 0, 1]}]}
        )
    warmed = stub.WarmCache(
        pb.WarmCacheRequest(namespace="g-ns", vector_ids=["a", "zz"]), metadata=ROOT
    )
    assert warmed.warmed_count == 1
    deleted = stub.DeleteVectors(
        pb.DeleteVectorsRequest(namespace="g-ns", ids=["c", "zz"]), metadata=ROOT
    )
    assert deleted.deleted_count == 1
    assert stub.DeleteNamespace(pb.DeleteNamespaceRequest(namespace="g-ns"), metadata=ROOT).success
    assert (
        code_of(lambda: stub.GetNamespace(pb.GetNamespaceRequest(namespace="g-ns"), metadata=ROOT))
        == grpc.StatusCode.NOT_FOUND
    )


def test_errors_map_to_status_codes_without_internals(served: tuple[RunningServer, Any]) -> None:
    _, stub = served
    stub.Upsert(
        pb.UpsertRequest(namespace="g-err", vectors=[pb.ProtoVector(id="a", values=[1, 2])]),
        metadata=ROOT,
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Query(pb.QueryRequest(namespace="g-err", vector=[1, 2, 3]), metadata=ROOT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "dimension 3" in caught.value.details() and "dimension 2" in caught.value.details()  # type: ignore[attr-defined]
    bad_json = pb.ProtoVector(id="b", values=[1, 2], metadata_json="{nope")
    assert (
        code_of(
            lambda: stub.Upsert(
                pb.UpsertRequest(namespace="g-err", vectors=[bad_json]), metadata=ROOT
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    nan = pb.ProtoVector(id="c", values=[float("nan"), 1])
    assert (
        code_of(
            lambda: stub.Upsert(pb.UpsertRequest(namespace="g-err", vectors=[nan]), metadata=ROOT)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        code_of(
            lambda: stub.Query(
                pb.QueryRequest(namespace="g-err", vector=[1, 2], distance_metric="manhattan"),
                metadata=ROOT,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_scopes_come_from_the_rest_table(served: tuple[RunningServer, Any]) -> None:
    running, stub = served
    app = running.uvicorn_server.config.app
    table = {(r.method, r.path): r.scope for r in scope_table(app)}
    scopes = rpc_scopes(table)
    assert (
        set(scopes)
        == set(RPC_ROUTES)
        == {m.name for m in pb.DESCRIPTOR.services_by_name["VectorService"].methods}
    )
    assert scopes == {
        "Health": Scope.PUBLIC,
        "GetNamespace": Scope.READ,
        "Query": Scope.READ,
        "Upsert": Scope.WRITE,
        "DeleteVectors": Scope.WRITE,
        "WarmCache": Scope.WRITE,
        "DeleteNamespace": Scope.ADMIN,
    }
    with pytest.raises(RuntimeError, match="not served"):
        rpc_scopes({})
    # A read key may query but not write, over gRPC exactly as over REST.
    with running.http() as http:
        read_key = http.post("/admin/keys", json={"name": "grpc-reader", "scope": "read"}).json()[
            "key"
        ]
    reader = (("x-api-key", read_key),)
    stub.Upsert(
        pb.UpsertRequest(namespace="g-scope", vectors=[pb.ProtoVector(id="a", values=[1])]),
        metadata=ROOT,
    )
    assert stub.Query(pb.QueryRequest(namespace="g-scope", vector=[1]), metadata=reader).results
    assert (
        code_of(
            lambda: stub.Upsert(
                pb.UpsertRequest(namespace="g-scope", vectors=[pb.ProtoVector(id="b", values=[1])]),
                metadata=reader,
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        code_of(
            lambda: stub.DeleteNamespace(
                pb.DeleteNamespaceRequest(namespace="g-scope"), metadata=reader
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    bearer = (("authorization", f"Bearer {ROOT_KEY}"),)
    assert (
        stub.GetNamespace(pb.GetNamespaceRequest(namespace="g-scope"), metadata=bearer).vector_count
        == 1
    )


def test_grpc_can_be_switched_off(tmp_path: Any, embedder: EmbeddingProvider) -> None:
    running = start_server(tmp_path, embedder, grpc_enabled=False)
    try:
        assert running.uvicorn_server.config.app.state.grpc_server is None
    finally:
        running.stop()


def test_calls_are_counted_with_rest_traffic(served: tuple[RunningServer, Any]) -> None:
    """Analytics see gRPC: each call under its RPC, its namespace, and queries in the query
    rate; refused calls counted as the status they map to."""
    running, stub = served

    def counts() -> tuple[int, int, int]:
        with running.http() as http:
            routes = http.get("/v1/analytics/latency", params={"period": "1h"}).json()
            overview = http.get("/v1/analytics/throughput", params={"period": "1h"}).json()
        by_route = routes["by_route"]
        return (
            by_route.get("GRPC /dakera.v1.VectorService/Query", {}).get("count", 0),
            by_route.get("GRPC /dakera.v1.VectorService/Upsert", {}).get("count", 0),
            overview["by_operation"].get("query", 0),
        )

    before = counts()
    stub.Upsert(
        pb.UpsertRequest(namespace="g-count", vectors=[pb.ProtoVector(id="a", values=[1, 0])]),
        metadata=ROOT,
    )
    for _ in range(7):
        stub.Query(pb.QueryRequest(namespace="g-count", vector=[1, 0], top_k=1), metadata=ROOT)
    code_of(lambda: stub.Query(pb.QueryRequest(namespace="g-count", vector=[1, 0])))
    after = counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [8, 1, 8]
    with running.http() as http:
        of_namespace = http.get(
            "/v1/analytics/throughput", params={"period": "1h", "namespace": "g-count"}
        ).json()
    assert of_namespace["total_operations"] == 9  # the refused call counts against it too


def test_maintenance_that_refuses_requests_refuses_rpcs(served: tuple[RunningServer, Any]) -> None:
    running, stub = served
    stub.Upsert(
        pb.UpsertRequest(namespace="g-maint", vectors=[pb.ProtoVector(id="a", values=[1, 0])]),
        metadata=ROOT,
    )
    query = pb.QueryRequest(namespace="g-maint", vector=[1, 0], top_k=1)
    with running.http() as http:
        http.post(
            "/v1/admin/cluster/maintenance/enable",
            json={"reason": "grpc test", "reject_requests": True},
        ).raise_for_status()
        try:
            assert code_of(lambda: stub.Query(query, metadata=ROOT)) == grpc.StatusCode.UNAVAILABLE
            assert stub.Health(pb.HealthRequest()).status == "healthy"
        finally:
            http.post("/v1/admin/cluster/maintenance/disable").raise_for_status()
    assert len(stub.Query(query, metadata=ROOT).results) == 1
