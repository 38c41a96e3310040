"""Import and export through the SDK and raw HTTP (issue 14; api/memories/portability.py).

Round trips for every format, the Mem0 and Zep fixtures (tests/fixtures, written from their
documented shapes) mapped as docs/portability.md says, bad rows reported by number and never
stored, idempotent re-imports, conflict modes, body forms, OpenMemory zips and large jobs.
"""

from __future__ import annotations

import gzip
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from dakera import DakeraClient

from tests.conftest import RunningServer
from tests.security.conftest import create_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def export(client: DakeraClient, agent: str, fmt: str = "jsonl") -> Any:
    return client.export_memories(format=fmt, agent_id=agent)


def records(client: DakeraClient, agent: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in export(client, agent).data}


def wait_import(http: httpx.Client, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/v1/import/{job_id}/status").json()
        if status["status"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError("import did not finish")


def seed(client: DakeraClient, agent: str) -> None:
    session = client.start_session(agent)
    client.store_memory(
        agent,
        'Ünïcode, commas, "quotes"\nand a new line',
        importance=0.9,
        tags=["alpha", "beta"],
        metadata={"k": [1, {"x": "y"}]},
        session_id=session["id"],
        memory_type="semantic",
    )
    client.store_memory(agent, "an event in the past", event_time=1_600_000_000, ttl_seconds=86400)
    client.store_memory(agent, "plain one", memory_type="procedural", importance=0.1)
    client.recall(agent, "plain")  # access statistics travel too


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "mem0", "zep"])
def test_round_trip_every_format(client: DakeraClient, agent_id: str, fmt: str) -> None:
    seed(client, agent_id)
    first = export(client, agent_id, fmt)
    assert first.count == 3
    answer = client.import_memories(first.raw, format=fmt, agent_id=f"{agent_id}-copy")
    assert (answer.imported_count, answer.errors, answer.status) == (3, [], "done")
    again = export(client, f"{agent_id}-copy", fmt)
    assert again.raw.replace(f"{agent_id}-copy", agent_id) == first.raw
    original, copy = records(client, agent_id), records(client, f"{agent_id}-copy")
    for memory_id, record in original.items():
        assert {**copy[memory_id], "agent_id": agent_id} == record


def test_mem0_get_all_export_maps_as_documented(client: DakeraClient, agent_id: str) -> None:
    data = (FIXTURES / "mem0_get_all.json").read_bytes()
    answer = client.import_memories(data, format="mem0", agent_id=agent_id)
    assert answer.imported_count == 2, answer.errors
    got = records(client, agent_id)
    food = got["0b2c9a5e-3f2e-4a51-9d6b-8f0e1c2d3a41"]
    assert food["content"] == "Prefers vegetarian food and dislikes mushrooms"
    assert food["tags"] == ["food", "user-preferences"]
    assert food["metadata"] == {
        "source": "chat",
        "confidence": 0.9,
        "mem0": {"user_id": "alex", "hash": "1c7c3e0c7d4f2b1d0a2f7a9c1b3e5d77"},
    }
    assert food["created_at"] == 1721464518 and food["updated_at"] == 1721578202
    trip = got["6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a09"]
    assert trip["session_id"] == "trip-planning-1" and trip["created_at"] == 1722600000


def test_zep_messages_map_as_documented(client: DakeraClient, agent_id: str) -> None:
    data = (FIXTURES / "zep_session_messages.json").read_bytes()
    answer = client.import_memories(data, format="zep", agent_id=agent_id)
    assert answer.imported_count == 2, answer.errors
    got = records(client, agent_id)
    user = got["3e0e4af9-71ff-4541-b206-6133574bbbc7"]
    assert user["content"].startswith("My order 1138")
    assert user["session_id"] == "support-42"
    assert user["tags"] == ["role:user", "role:jane"]
    assert user["metadata"] == {
        "channel": "email",
        "zep": {"role": "Jane", "role_type": "user", "token_count": 14},
    }
    assert user["created_at"] == 1702073853 and user["updated_at"] == 1702073853


def test_bad_rows_are_reported_by_number_and_never_stored(
    client: DakeraClient, http: httpx.Client, agent_id: str
) -> None:
    lines = [
        b'{"id": "good-1", "content": "fine row"}',
        b'{"id": "broken", "content": ',
        b'{"id": "no-content", "tags": ["x"]}',
        b'{"id": "bad-tag", "content": "x", "tags": ["<script>alert(1)</script>"]}',
        b'{"id": "x\'; DROP TABLE memories; --", "content": "sql in the id"}',
        b'{"id": "inject-meta", "content": "y", "metadata": {"$where": "1"}}',
        b'{"id": "huge", "content": "' + b"a" * 100_001 + b'"}',
        b'{"id": "good-2", "content": "also fine", "importance": 0.7}',
    ]
    answer = client.import_memories(b"\n".join(lines), format="jsonl", agent_id=agent_id)
    assert answer.imported_count == 2
    assert answer.skipped_count == 6
    assert [e.split(":")[0] for e in answer.errors] == [f"row {n}" for n in (2, 3, 4, 5, 6, 7)]
    assert "invalid JSON" in answer.errors[0] and "content" in answer.errors[1]
    assert "DROP" not in " ".join(answer.errors) and "<script>" not in " ".join(answer.errors)
    assert set(records(client, agent_id)) == {"good-1", "good-2"}


def test_reimport_is_idempotent_and_conflict_modes(client: DakeraClient, agent_id: str) -> None:
    text = 'content,tags\nfirst row,a\nsecond row,"b,c"\n'
    first = client.import_memories(text, format="csv", agent_id=agent_id)
    second = client.import_memories(text, format="csv", agent_id=agent_id)
    assert first.imported_count == 2 and second.job_id == first.job_id
    assert len(records(client, agent_id)) == 2
    stored = export(client, agent_id).data
    changed = [{**r, "content": r["content"] + " (edited)"} for r in stored]
    lines = "\n".join(orjson.dumps(r).decode() for r in changed)
    skipped = client.import_memories(lines, format="jsonl", agent_id=agent_id)
    assert (skipped.imported_count, skipped.skipped_count) == (0, 2)
    with httpx.Client(
        base_url=client.base_url, headers={"Authorization": f"Bearer {client.api_key}"}
    ) as http:
        for mode, count in (("overwrite", 2), ("new_ids", 4)):
            answer = http.post(
                "/v1/import",
                params={"agent_id": agent_id, "conflict": mode},
                content=lines,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert answer.json()["imported"] == 2, answer.text
            assert len(records(client, agent_id)) == count
    assert sum("(edited)" in r["content"] for r in export(client, agent_id).data) == 4


def test_body_forms_and_format_detection(
    http: httpx.Client, client: DakeraClient, agent_id: str
) -> None:
    body = {"agent_id": agent_id, "data": [{"content": "from a JSON body", "tags": ["j"]}]}
    answer = http.post("/v1/import", json=body)
    assert answer.json()["imported"] == 1 and answer.json()["format"] == "jsonl", answer.text
    answer = http.post(
        "/v1/import",
        params={"agent_id": agent_id},
        content="content,importance\nfrom csv text,0.8\n",
        headers={"Content-Type": "text/csv"},
    )
    assert answer.json()["format"] == "csv" and answer.json()["imported"] == 1
    mem0 = (FIXTURES / "mem0_get_all.json").read_bytes()
    answer = http.post("/v1/import", params={"agent_id": agent_id}, files={"file": ("x", mem0)})
    assert answer.json()["format"] == "mem0" and answer.json()["imported"] == 2
    zep = (FIXTURES / "zep_session_messages.json").read_bytes()
    answer = http.post(
        "/v1/import",
        params={"agent_id": agent_id},
        content=gzip.compress(zep),
        headers={"Content-Type": "application/gzip"},
    )
    assert answer.json()["format"] == "zep", answer.text
    assert len(records(client, agent_id)) == 6
    assert (
        http.post(
            "/v1/import", params={"agent_id": agent_id, "format": "xml"}, content="x"
        ).status_code
        == 400
    )


def test_openmemory_backup_zip(http: httpx.Client, client: DakeraClient, agent_id: str) -> None:
    lines = [
        {
            "id": "5f0c6f3e-1111-4b7a-9c2d-000000000001",
            "content": "Likes green tea",
            "metadata": {"src": "om"},
            "created_at": "2025-01-02T03:04:05+00:00",
            "updated_at": None,
            "state": "active",
            "app": "claude",
            "categories": ["Food & Drink"],
        },
        {
            "id": "5f0c6f3e-1111-4b7a-9c2d-000000000002",
            "content": "old thing",
            "metadata": {},
            "created_at": None,
            "state": "deleted",
            "app": None,
            "categories": [],
        },
    ]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("memories.json", orjson.dumps({"memories": [], "categories": []}))
        zf.writestr("memories.jsonl.gz", gzip.compress(b"\n".join(orjson.dumps(x) for x in lines)))
    answer = http.post(
        "/v1/import",
        params={"agent_id": agent_id},
        files={"file": ("export.zip", archive.getvalue())},
    )
    assert answer.json()["format"] == "openmemory" and answer.json()["imported"] == 1, answer.text
    tea = records(client, agent_id)["5f0c6f3e-1111-4b7a-9c2d-000000000001"]
    assert tea["tags"] == ["food-drink"] and tea["created_at"] == 1735787045
    assert tea["metadata"] == {"src": "om", "openmemory": {"app": "claude", "state": "active"}}


def test_a_large_import_is_a_job(http: httpx.Client, client: DakeraClient, agent_id: str) -> None:
    rows = b"\n".join(orjson.dumps({"content": f"bulk row {i}"}) for i in range(2100))
    answer = http.post(
        "/v1/import", params={"agent_id": agent_id}, files={"file": ("a.jsonl", rows)}
    )
    started = answer.json()
    assert started["status"] == "running" and started["total"] == 2100
    done = wait_import(http, started["job_id"])
    assert done["status"] == "done" and done["imported"] == 2100
    status = client.import_job_status(started["job_id"])
    assert status.imported == 2100 and status.finished_at is not None
    assert export(client, agent_id).count == 2100


def test_tenants_cannot_reach_each_other(
    server: RunningServer, http: httpx.Client, agent_id: str
) -> None:
    key = create_key(http, name="tenant", scope="write", namespaces=[f"_dakera_agent_{agent_id}-a"])
    job = http.post(
        "/v1/import",
        params={"agent_id": f"{agent_id}-b"},
        content="content\nx\n",
        headers={"Content-Type": "text/csv"},
    ).json()
    with server.http(key=key["key"]) as tenant:
        assert tenant.get("/v1/export", params={"agent_id": f"{agent_id}-b"}).status_code == 403
        assert tenant.get(f"/v1/import/{job['job_id']}/status").status_code == 404
        refused = tenant.post(
            "/v1/import",
            params={"agent_id": f"{agent_id}-b"},
            content="content\nx\n",
            headers={"Content-Type": "text/csv"},
        )
        assert refused.status_code == 403
        assert tenant.get("/v1/export", params={"agent_id": f"{agent_id}-a"}).status_code == 200
