"""``POST /ops/shutdown`` (§4.11): a graceful stop of a real ``dakera-server serve`` process —
the request in flight is answered, the audit queue and event log are drained, nothing is lost."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import AuthorizationError

from tests.conftest import ROOT_KEY
from tests.processes import spawn_server

pytestmark = pytest.mark.slow


def test_shutdown_drains_in_flight_work_and_exits_cleanly(tmp_path: Path) -> None:
    audit_log = tmp_path / "audit.jsonl"
    process = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(audit_log),
        DAKERA_GRPC_ENABLED="false",
    )
    client = DakeraClient(process.url, api_key=ROOT_KEY, max_retries=1)
    try:
        admin = client.create_key(name="plain-admin", scope="admin")
        with pytest.raises(AuthorizationError):
            DakeraClient(process.url, api_key=admin["key"]).ops_shutdown()
        outcome: dict[str, Any] = {}

        def slow_batch() -> None:  # ~200 embeddings: still running when the shutdown arrives
            items = [{"content": f"memory number {i} about shutdown drains"} for i in range(200)]
            response = httpx.post(
                f"{process.url}/v1/memories/store/batch",
                json={"agent_id": "drain-agent", "memories": items},
                headers={"Authorization": f"Bearer {ROOT_KEY}"},
                timeout=120.0,
            )
            outcome["status"] = response.status_code

        writer = threading.Thread(target=slow_batch)
        writer.start()
        time.sleep(0.3)
        answer = client.ops_shutdown()
        assert answer["status"] == "shutting_down" and answer["draining"] is True
        writer.join(timeout=120)
        assert outcome.get("status") == 200
        assert process.process.wait(timeout=60) == 0, process.output()
    finally:
        client.close()
        process.stop()
    entries = [json.loads(line) for line in audit_log.read_text().splitlines()]
    paths = [e.get("path") for e in entries if e.get("kind") == "request"]
    assert "/ops/shutdown" in paths and "/v1/memories/store/batch" in paths
    again = spawn_server(tmp_path / "data", tmp_path / "server2.log", DAKERA_GRPC_ENABLED="false")
    try:
        with httpx.Client(base_url=again.url, headers={"Authorization": f"Bearer {ROOT_KEY}"}) as h:
            memories = h.get("/v1/agents/drain-agent/memories", params={"limit": 1000}).json()
            listed = memories if isinstance(memories, list) else memories.get("memories", [])
            assert len(listed) == 200
            overview = h.get("/v1/analytics/overview", params={"period": "1h"}).json()
            assert overview["total_upserts"] >= 1
    finally:
        again.stop()


def test_a_server_not_run_by_the_cli_or_harness_answers_501(server: Any) -> None:
    app = server.uvicorn_server.config.app
    saved = app.state.request_shutdown
    app.state.request_shutdown = None
    try:
        with server.http() as http:
            answer = http.post("/ops/shutdown", headers={"Content-Type": "application/json"})
        assert answer.status_code == 501 and answer.json()["code"] == "NOT_IMPLEMENTED"
    finally:
        app.state.request_shutdown = saved
