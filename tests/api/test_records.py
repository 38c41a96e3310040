"""Multi-representation records through the SDK: the primary vector is an ordinary, searchable
vector of the namespace; named representations are packed as asked, read back exactly (f32) or
within their precision (f16, i8), bounded by the record limits, and deleted with the vector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dakera import DakeraClient
from dakera.exceptions import (
    FeatureNotAvailableError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)
from dakera.models import BlockDType, Record, Representation, RepresentationKind

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

TOKENS = [[0.5, -0.25, 1.0], [0.125, 0.75, -1.0]]


@pytest.fixture(scope="module")
def records_server(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
    fresh_storage: Callable[[], dict[str, Any]],
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("records"),
        embedder,
        **fresh_storage(),
        records_enabled=True,
        record_max_vectors=8,
        record_max_bytes=4096,
    )
    yield running
    running.stop()


@pytest.fixture
def sdk(records_server: RunningServer) -> Iterator[DakeraClient]:
    client = DakeraClient(records_server.url, api_key=ROOT_KEY)
    yield client
    client.close()


def record(record_id: str, store_as: BlockDType, values: list[float] | None = None) -> Record:
    return Record(
        id=record_id,
        values=values or [1.0, 0.0, 0.0, 0.0],
        representations=[
            Representation(
                "tokens",
                TOKENS,
                kind=RepresentationKind.TOKEN_MULTIVECTOR,
                store_as=store_as,
                model="colbert-mini",
            ),
            Representation("title", [[0.1, 0.2]], kind=RepresentationKind.DENSE),
        ],
        metadata={"lang": "en"},
    )


def test_records_round_trip_with_their_representations(sdk: DakeraClient, agent_id: str) -> None:
    space = "rec-" + agent_id[-6:]
    answer = sdk.upsert_records(
        space,
        [
            record("r1", BlockDType.F32),
            record("r2", BlockDType.F16, [0.0, 1.0, 0.0, 0.0]),
            record("r3", BlockDType.I8, [0, 0, 1.0, 0]),
        ],
    )
    assert answer.upserted_count == 3
    view = sdk.get_record(space, "r1")
    assert view.dimension == 4 and view.values is None and view.metadata == {"lang": "en"}
    tokens = {r.name: r for r in view.representations}["tokens"]
    assert (tokens.kind, tokens.dim, tokens.count, tokens.dtype, tokens.model) == (
        RepresentationKind.TOKEN_MULTIVECTOR,
        3,
        2,
        BlockDType.F32,
        "colbert-mini",
    )
    assert tokens.bytes == 2 * 3 * 4 and tokens.vectors is None
    full = sdk.get_record(space, "r1", include_vectors=True)
    assert full.values == [1.0, 0.0, 0.0, 0.0]
    assert {r.name: r for r in full.representations}["tokens"].vectors == TOKENS
    half = {r.name: r for r in sdk.get_record(space, "r2", True).representations}["tokens"]
    assert half.bytes == 2 * 3 * 2 and half.vectors == TOKENS  # these values are exact in f16
    quarter = {r.name: r for r in sdk.get_record(space, "r3", True).representations}["tokens"]
    assert quarter.bytes == 2 * 4 + 2 * 3
    for got, want in zip(quarter.vectors or [], TOKENS, strict=True):
        scale = max(abs(v) for v in want)
        assert all(abs(g - w) <= scale / 127 for g, w in zip(got, want, strict=True))


def test_the_primary_vector_is_searched_like_any_vector(sdk: DakeraClient, agent_id: str) -> None:
    space = "rec-" + agent_id[-6:]
    sdk.upsert_records(
        space,
        [
            record("near", BlockDType.F32, [0.9, 0.1, 0, 0]),
            record("far", BlockDType.F32, [0, 0, 0.1, 0.9]),
        ],
    )
    hits = sdk.query(space, [1.0, 0.0, 0.0, 0.0], top_k=1)
    assert hits.results[0].id == "near"


def test_deleting_the_vector_deletes_the_record(
    sdk: DakeraClient, records_server: RunningServer, agent_id: str
) -> None:
    space = "rec-" + agent_id[-6:]
    sdk.upsert_records(space, [record("gone", BlockDType.F32)])
    sdk.delete(space, ids=["gone"])
    with pytest.raises(NotFoundError):
        sdk.get_record(space, "gone")
    assert records_server.engine.store.get_row("representations", "gone", space) is None


def test_limits_and_shapes_are_checked(sdk: DakeraClient, agent_id: str) -> None:
    space = "rec-" + agent_id[-6:]
    many = [[0.1, 0.2, 0.3]] * 8
    with pytest.raises(PayloadTooLargeError) as rows:
        sdk.upsert_records(
            space,
            [
                {
                    "id": "x",
                    "values": [1, 0, 0, 0],
                    "representations": [
                        {"name": "t", "kind": "token_multivector", "vectors": many}
                    ],
                }
            ],
        )
    assert "DAKERA_RECORD_MAX_VECTORS" in str(rows.value)
    wide = [[0.5] * 600, [0.5] * 600]
    with pytest.raises(PayloadTooLargeError) as size:
        sdk.upsert_records(
            space,
            [
                {
                    "id": "x",
                    "values": [1, 0, 0, 0],
                    "representations": [
                        {"name": "t", "kind": "patch_multivector", "vectors": wide}
                    ],
                }
            ],
        )
    assert "DAKERA_RECORD_MAX_BYTES" in str(size.value)
    for bad in (
        {"name": "dense", "vectors": [[1.0]]},
        {"name": "t", "kind": "dense", "vectors": [[1.0], [2.0]]},
        {"name": "t", "kind": "token_multivector", "vectors": [[1.0, 2.0], [3.0]]},
        {"name": "t", "store_as": "bf16", "vectors": [[1.0]]},
    ):
        with pytest.raises(ValidationError):
            sdk.upsert_records(
                space, [{"id": "x", "values": [1, 0, 0, 0], "representations": [bad]}]
            )
    with pytest.raises(NotFoundError):
        sdk.get_record(space, "x")  # nothing of a refused batch was written


def test_capabilities_and_the_default_off(sdk: DakeraClient, client: DakeraClient) -> None:
    records = sdk.capabilities(refresh=True).records
    assert records.enabled and records.max_vectors == 8 and BlockDType.I8 in records.dtypes
    with pytest.raises(FeatureNotAvailableError) as off:
        client.upsert_records("any", [{"id": "a", "values": [1.0]}])
    assert "DAKERA_RECORDS" in str(off.value.details)
