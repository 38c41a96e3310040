"""Business events: the audit routes (§4.8) and the four SSE streams (§1.10, §4.9), via the SDK."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from dakera import DakeraClient

from dakera_server.api.sse import _frames
from dakera_server.engine.events.audit import EventStream
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server


class Collector:
    """Consumes an SDK stream on a thread until ``done`` says it has what it needs."""

    def __init__(self, stream: Iterable[Any], done: Callable[[list[Any]], bool]) -> None:
        self.events: list[Any] = []
        self.connected = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._stream = stream
        self._done = done
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "no handshake"

    def _run(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
                kind = getattr(event, "type", None) or getattr(event, "event_type", None)
                if kind == "connected":
                    self.connected.set()
                if self._done(self.events):
                    break
        except Exception as exc:
            self.error = exc
        finally:
            self.connected.set()
            self.finished.set()

    def wait(self) -> list[Any]:
        assert self.finished.wait(15), f"stream did not deliver: {self.events}"
        assert self.error is None, self.error
        return self.events


@pytest.fixture
def root_client(server: RunningServer) -> Iterator[DakeraClient]:
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    yield sdk
    sdk.close()


def test_memory_event_stream_carries_the_lifecycle(
    server: RunningServer, root_client: DakeraClient, agent_id: str
) -> None:
    listener = DakeraClient(server.url, api_key=ROOT_KEY)
    wanted = ["stored", "recalled", "importance_updated", "session_started", "session_ended"]
    wanted += ["forgotten"]

    def done(events: list[Any]) -> bool:
        seen = {e.event_type for e in events if e.agent_id == agent_id}
        return set(wanted) <= seen

    try:
        collector = Collector(listener.stream_memory_events(timeout=10), done)
        started = int(time.time() * 1000)
        stored = root_client.store_memory(agent_id, "The user drinks oat milk", tags=["diet"])
        memory_id = stored["id"]
        root_client.recall(agent_id, "what milk")
        root_client.update_importance(agent_id, [memory_id], 0.9)
        session = root_client.start_session(agent_id)
        root_client.end_session(session["id"])
        root_client.forget(agent_id, memory_id)
        events = collector.wait()
    finally:
        listener.close()
    assert events[0].event_type == "connected" and isinstance(events[0].timestamp, int)
    mine = [e for e in events if e.agent_id == agent_id]
    kinds = [e.event_type for e in mine]
    assert kinds.index("stored") < kinds.index("forgotten")
    first = mine[kinds.index("stored")]
    assert first.memory_id == memory_id and first.content == "The user drinks oat milk"
    assert first.tags == ["diet"] and first.importance == 0.5
    assert started - 1000 <= first.timestamp <= int(time.time() * 1000) + 1000
    assert mine[kinds.index("importance_updated")].importance == 0.9
    ended = mine[kinds.index("session_ended")]
    assert ended.session_id == session["id"] and ended.reason == "client"


def test_audit_stream_payloads_have_type_and_event_type(
    server: RunningServer, root_client: DakeraClient, agent_id: str
) -> None:
    lines: list[str] = []
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream(
            "GET", "/v1/audit/stream", params={"agent_id": agent_id, "api_key": ROOT_KEY}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        iterator = response.iter_lines()
        assert next(iterator) == "event: connected"
        handshake = orjson.loads(next(iterator).removeprefix("data: "))
        assert handshake["type"] == "connected" and isinstance(handshake["timestamp"], int)
        root_client.store_memory(agent_id, "audit me")
        for line in iterator:
            lines.append(line)
            if line.startswith("data: "):
                break
    payload = orjson.loads(lines[-1].removeprefix("data: "))
    assert payload["type"] == payload["event_type"] == "stored"
    assert payload["agent_id"] == agent_id and "content" not in payload
    assert isinstance(payload["id"], int) and isinstance(payload["timestamp"], int)


def test_sdk_audit_and_namespace_streams(
    server: RunningServer, root_client: DakeraClient, agent_id: str
) -> None:
    audit_listener = DakeraClient(server.url, api_key=ROOT_KEY)
    namespace_listener = DakeraClient(server.url, api_key=ROOT_KEY)
    namespace = f"_dakera_agent_{agent_id}"

    def until(kind: str) -> Callable[[list[Any]], bool]:
        return lambda events: any(e.type == kind for e in events)

    try:
        audit = Collector(
            audit_listener.stream_audit_events(agent_id=agent_id, event_type="stored", timeout=10),
            until("stored"),
        )
        in_namespace = Collector(
            namespace_listener.stream_namespace_events(namespace, timeout=10),
            until("policy_changed"),
        )
        root_client.store_memory(agent_id, "streamed")
        http = httpx.put(
            f"{server.url}/v1/namespaces/{namespace}/memory_policy",
            json={"dedup_on_store": False},
            headers={"Authorization": f"Bearer {ROOT_KEY}"},
        )
        assert http.status_code == 200
        audit_events = audit.wait()
        namespace_events = in_namespace.wait()
    finally:
        audit_listener.close()
        namespace_listener.close()
    assert [e.type for e in audit_events] == ["connected", "stored"]
    kinds = [e.type for e in namespace_events]
    assert kinds[0] == "connected" and "stored" in kinds and kinds[-1] == "policy_changed"
    assert namespace_events[-1].namespace == namespace


def test_global_stream_and_export_need_admin(server: RunningServer, http: httpx.Client) -> None:
    created = http.post("/admin/keys", json={"name": "events-reader", "scope": "read"})
    assert created.status_code == 201
    reader = {"Authorization": f"Bearer {created.json()['key']}"}
    assert httpx.get(f"{server.url}/ops/events", headers=reader).status_code == 403
    assert httpx.get(f"{server.url}/v1/audit/export", headers=reader).status_code == 403
    assert httpx.get(f"{server.url}/v1/audit", headers=reader).status_code == 200
    listener = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        events = Collector(listener.stream_global_events(timeout=10), lambda e: True).wait()
    finally:
        listener.close()
    assert events[0].type == "connected"


def test_list_filters_and_cursor_pages(
    server: RunningServer, root_client: DakeraClient, agent_id: str
) -> None:
    other = agent_id + "-other"
    before = int(time.time() * 1000)
    ids = [root_client.store_memory(agent_id, f"note number {i}")["id"] for i in range(5)]
    root_client.store_memory(other, "someone else")
    first = root_client.list_audit_events(agent_id=agent_id, event_type="stored", limit=2)
    assert len(first.events) == 2 and first.total == 2 and first.cursor is not None
    collected = list(first.events)
    cursor = first.cursor
    while cursor is not None:
        page = root_client.list_audit_events(
            agent_id=agent_id, event_type="stored", limit=2, cursor=cursor
        )
        collected.extend(page.events)
        cursor = page.cursor
    event_ids = [int(e.id) for e in collected]
    assert event_ids == sorted(event_ids, reverse=True) and len(set(event_ids)) == 5
    assert [e.memory_id for e in reversed(collected)] == ids
    assert all(e.agent_id == agent_id and e.event_type == "stored" for e in collected)
    window = root_client.list_audit_events(agent_id=agent_id, from_ts=0, to_ts=before - 1)
    assert window.events == []
    later = root_client.list_audit_events(agent_id=agent_id, from_ts=collected[1].timestamp)
    assert {e.memory_id for e in later.events} >= {ids[-1], ids[-2]}
    bad = httpx.get(
        f"{server.url}/v1/audit",
        params={"limit": "many"},
        headers={"Authorization": f"Bearer {ROOT_KEY}"},
    )
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"


def test_export_json_jsonl_and_csv(root_client: DakeraClient, agent_id: str) -> None:
    for i in range(3):
        root_client.store_memory(agent_id, f"exported {i}")
    as_json = root_client.export_audit(format="json", agent_id=agent_id)
    assert as_json.count == 3
    events = orjson.loads(as_json.data)
    assert [e["event_type"] for e in events] == ["stored"] * 3
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)  # oldest first
    as_jsonl = root_client.export_audit(format="jsonl", agent_id=agent_id)
    assert len(as_jsonl.data.splitlines()) == 3
    as_csv = root_client.export_audit(format="csv", agent_id=agent_id, limit=2)
    rows = as_csv.data.splitlines()
    assert rows[0] == "id,event_type,agent_id,memory_id,session_id,importance,timestamp"
    assert as_csv.count == 2 and all(f",stored,{agent_id}," in row for row in rows[1:])


def test_a_namespace_key_sees_only_its_events(
    server: RunningServer, http: httpx.Client, root_client: DakeraClient, agent_id: str
) -> None:
    other = agent_id + "-hidden"
    root_client.store_memory(agent_id, "visible")
    root_client.store_memory(other, "hidden")
    created = http.post(
        "/admin/keys",
        json={"name": "ns-reader", "scope": "read", "namespaces": [f"_dakera_agent_{agent_id}"]},
    )
    assert created.status_code == 201
    scoped = DakeraClient(server.url, api_key=created.json()["key"])
    try:
        seen = scoped.list_audit_events(limit=1000).events
        assert seen and all(e.agent_id == agent_id for e in seen)
        assert scoped.list_audit_events(agent_id=other).events == []
    finally:
        scoped.close()
    assert root_client.list_audit_events(agent_id=other).events  # there, just not for it


def test_events_survive_a_restart_and_ids_continue(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    data = tmp_path / "data"
    first = start_server(data, embedder)
    try:
        client = DakeraClient(first.url, api_key=ROOT_KEY)
        client.store_memory("restart-agent", "before the restart")
        old = client.list_audit_events(agent_id="restart-agent").events
        client.close()
    finally:
        first.stop()
    second = start_server(data, embedder)
    try:
        client = DakeraClient(second.url, api_key=ROOT_KEY)
        client.store_memory("restart-agent", "after the restart")
        events = client.list_audit_events(agent_id="restart-agent").events
        client.close()
    finally:
        second.stop()
    assert len(old) == 1 and len(events) == 2
    assert events[1].id == old[0].id and int(events[0].id) > int(old[0].id)


# ------------------------------------------------------------- SSE framing


async def _take(stream: EventStream, count: int, keepalive: float) -> list[bytes]:
    frames: list[bytes] = []
    generator = _frames(stream, keepalive)
    try:
        async for frame in generator:
            frames.append(frame)
            if len(frames) == count:
                break
    finally:
        await generator.aclose()
    return frames


def test_keepalive_comments_and_lag_reports() -> None:
    bus = EventBus()
    subscription = bus.subscribe(capacity=2)
    stream = EventStream(subscription, lambda e: e.to_wire())
    for index in range(5):
        bus.emit("stored", agent_id="a", memory_id=f"m{index}")
    frames = asyncio.run(_take(stream, 5, keepalive=0.05))
    assert frames[0].startswith(b"event: connected\ndata: {")
    delivered = [orjson.loads(f.removeprefix(b"data: ")) for f in frames[1:3]]
    assert [d["memory_id"] for d in delivered] == ["m0", "m1"]
    lagged = orjson.loads(frames[3].removeprefix(b"data: "))
    assert lagged["type"] == "stream_lagged" and lagged["dropped"] == 3
    assert frames[4] == b": keep-alive\n\n"
    assert subscription not in bus._subscribers  # closed with the stream
