"""Runtime configuration (§5 ``/v1/admin/config``): live changes, refusals, audit, restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dakera import DakeraClient
from dakera.exceptions import ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, start_server


def test_changes_apply_now_are_audited_and_survive_a_restart(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    first = start_server(tmp_path, embedder, grpc_enabled=False)
    client = DakeraClient(first.url, api_key=ROOT_KEY)
    before = client.get_config()
    assert before["session_idle_timeout_secs"] == 14400
    answer = client.update_config(
        {"slow_query_threshold_ms": 250, "decay_interval_secs": 120},
        session_idle_timeout_secs=600,
    )
    assert answer["success"] and set(answer["changed"]) == {
        "slow_query_threshold_ms",
        "decay_interval_secs",
        "session_idle_timeout_secs",
    }
    session = client.start_session("cfg-agent")
    assert session["idle_timeout_secs"] == 600
    with first.http() as http:
        events = http.get("/v1/audit", params={"event_type": "config_changed"}).json()["events"]
    assert events and events[0]["details"]["changes"]["session_idle_timeout_secs"]["new"] == 600
    assert client.admin_update_slow_query_config(max_entries=5)["max_entries"] == 5
    client.close()
    first.stop()
    second = start_server(tmp_path, embedder, grpc_enabled=False)
    client = DakeraClient(second.url, api_key=ROOT_KEY)
    try:
        config = client.get_config()
        assert config["session_idle_timeout_secs"] == 600
        assert config["slow_query_threshold_ms"] == 250
        assert config["decay_interval_secs"] == 120
        assert config["slow_query_max_entries"] == 5
        with second.http() as http:
            assert http.get("/v1/capabilities").json()["sessions"]["idle_timeout_secs"] == 600
        assert client.debug_config()["_runtime_overrides"]["session_idle_timeout_secs"] == 600
    finally:
        client.close()
        second.stop()


def test_unknown_or_unsafe_keys_are_400s_listing_what_can_change(client: Any) -> None:
    with pytest.raises(ValidationError) as unknown:
        client.update_config({"colour": "blue"})
    assert "session_idle_timeout_secs" in str(unknown.value)
    with pytest.raises(ValidationError) as unsafe:
        client.update_config({"port": 1234})
    assert "DAKERA_PORT" in str(unsafe.value) and "restart" in str(unsafe.value)
    with pytest.raises(ValidationError, match="2592000"):
        client.update_config(session_idle_timeout_secs=3_000_000)
    with pytest.raises(ValidationError):
        client.update_config({})


def test_a_refused_change_changes_nothing(client: Any) -> None:
    before = client.get_config()
    with pytest.raises(ValidationError):
        client.update_config({"slow_query_threshold_ms": 1, "log_level": "loud"})
    assert client.get_config()["slow_query_threshold_ms"] == before["slow_query_threshold_ms"]
