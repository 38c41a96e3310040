"""Session routes through the SDK (dakera-api.md §3.9)."""

from __future__ import annotations

from typing import Any

import pytest
from dakera.exceptions import NotFoundError


def test_start_end_and_list(client: Any, agent_id: str) -> None:
    session = client.start_session(agent_id, metadata={"topic": "travel"})
    assert session["id"].startswith("sess_")
    assert session["agent_id"] == agent_id
    stored = client.store_memory(agent_id, "We talked about Japan", session_id=session["id"])
    assert stored["session_state"] == "active"
    assert client.session_memories(session["id"])[0]["id"] == stored["id"]
    listed = client.list_sessions(agent_id=agent_id)
    assert listed["total"] == 1 and listed["sessions"][0]["id"] == session["id"]
    ended = client.end_session(session["id"], summary="Planning a trip to Japan")
    assert ended["session"]["ended_reason"] == "client"
    assert ended["session"]["summary"] == "Planning a trip to Japan"
    fetched = client.get_session(session["id"])
    assert fetched["active"] is False
    # Storing into an ended session still succeeds and says so.
    late = client.store_memory(agent_id, "One more thing", session_id=session["id"])
    assert late["session_state"] == "ended"


def test_session_summary_becomes_a_memory(client: Any, agent_id: str) -> None:
    session = client.start_session(agent_id)
    client.end_session(session["id"], summary="The user wants a vegetarian menu")
    top = client.recall(agent_id, "vegetarian menu", top_k=1).memories[0]
    assert top.content == "The user wants a vegetarian menu"


def test_session_ids_with_colons_work_without_start(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "chat line", session_id="urn:chat:42")
    assert stored["session_id"] == "urn:chat:42"
    assert "session_state" not in stored
    found = client.recall(agent_id, "chat line", session_id="urn:chat:42")
    assert found.memories[0].id == stored["id"]


def test_unknown_session_is_404(client: Any) -> None:
    with pytest.raises(NotFoundError):
        client.get_session("sess_doesnotexist")


def test_chat_memory_session_round_trip(client: Any, agent_id: str) -> None:
    from dakera.session import ChatMemorySession

    with ChatMemorySession.create(client, agent_id=agent_id) as chat:
        chat.store("user", "The user's dog is called Biscuit")
        recalled = chat.recall("What is the dog's name?")
        assert any("Biscuit" in m.content for m in recalled)
    sessions = client.list_sessions(agent_id=agent_id)["sessions"]
    assert sessions and sessions[0]["active"] is False


def test_session_memories_preview(http: Any, agent_id: str) -> None:
    sid = http.post("/v1/sessions/start", json={"agent_id": agent_id}).json()["session"]["id"]
    http.post(
        "/v1/memory/store", json={"agent_id": agent_id, "content": "abcdefgh", "session_id": sid}
    )
    page = http.get(f"/v1/sessions/{sid}/memories?content_preview_chars=3").json()
    assert page["memories"][0]["content"] == "abc"
    assert page["memories"][0]["content_truncated"] is True
    assert page["total"] == 1


def test_touch_never_reopens(http: Any, agent_id: str) -> None:
    sid = http.post("/v1/sessions/start", json={"agent_id": agent_id}).json()["session"]["id"]
    assert http.post(f"/v1/sessions/{sid}/touch").json()["session_state"] == "active"
    http.post(f"/v1/sessions/{sid}/end", json={})
    touched = http.post(f"/v1/sessions/{sid}/touch").json()
    assert touched["session_state"] == "ended"
