"""AutoPilot (§3.13, §4.3) and background jobs (§4.11): config, trigger, scheduler, resumption.

The resumption tests cut a merge pass short — by a clean stop, and by ``kill -9`` of a real
server process — and check that after the restart nothing was lost or merged twice.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.textgen import memory_texts
from dakera.exceptions import NotFoundError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.lifecycle_support import HOUR, FakeClock, clock_server, wait_for
from tests.conftest import ROOT_KEY
from tests.processes import spawn_server

CONFIG_KEYS = {
    "enabled",
    "dedup_threshold",
    "dedup_interval_hours",
    "consolidation_interval_hours",
    "dedup_mode",
    "dedup_cross_session",
    "consolidate_cross_session",
    "trash_retention_hours",
}


def test_status_shape(client: Any) -> None:
    status = client.autopilot_status()
    assert set(status["config"]) == CONFIG_KEYS
    assert status["config"]["dedup_mode"] in ("off", "report", "merge")
    assert isinstance(status["config"]["trash_retention_hours"], int)
    for key in ("last_dedup_at", "last_consolidation_at", "total_dedup_removed"):
        assert key in status
    assert isinstance(status["total_consolidated"], int)


def test_config_validation_and_persistence(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    clock = FakeClock()
    with clock_server(tmp_path, embedder, clock) as (server, client):
        answer = client.autopilot_update_config(dedup_mode="report", trash_retention_hours=0)
        assert answer["success"] is True
        assert answer["config"]["dedup_mode"] == "report"
        assert answer["config"]["trash_retention_hours"] == 0
        with server.http() as http:
            for body in (
                {"dedup_mode": "sometimes"},
                {"trash_retention_hours": 9000},
                {"dedup_threshold": 0},
                {"dedup_interval_hours": 0},
            ):
                refused = http.put("/v1/admin/autopilot/config", json=body)
                assert refused.status_code == 400, body
            unknown = http.put("/v1/admin/autopilot/config", json={"mode": "merge"})
            assert unknown.status_code == 422
            assert (
                http.post("/v1/admin/autopilot/trigger", json={"action": "nap"}).status_code == 400
            )
    with clock_server(tmp_path, embedder, clock) as (_, client):
        config = client.autopilot_status()["config"]
        assert (config["dedup_mode"], config["trash_retention_hours"]) == ("report", 0)
        assert config["enabled"] is False  # the quiet test servers start it disabled


def test_trigger_follows_the_dedup_mode(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    with clock_server(tmp_path, embedder, FakeClock()) as (_, client):
        client.store_memory("ap-agent", "The user's favourite colour is blue.")
        client.store_memory("ap-agent", "The user's favourite colour is blue!")
        off = client.autopilot_trigger("dedup")
        assert off["success"] is True and off["dedup"]["duplicates_removed"] == 0
        assert off["dedup"]["mode"] == "off"
        client.autopilot_update_config(dedup_mode="report")
        report = client.autopilot_trigger("dedup")["dedup"]
        assert (report["duplicates_found"], report["duplicates_removed"]) == (1, 0)
        client.autopilot_update_config(dedup_mode="merge", trash_retention_hours=0)
        everything = client.autopilot_trigger("all")
        assert everything["dedup"]["duplicates_removed"] == 1
        assert everything["dedup"]["namespaces_processed"] == 1
        assert set(everything["consolidation"]) == {
            "namespaces_processed",
            "memories_scanned",
            "clusters_merged",
            "memories_consolidated",
        }
        assert client.list_deduplicated("ap-agent").count == 0  # retention 0 keeps no copy
        status = client.autopilot_status()
        assert status["total_dedup_removed"] == 1 and status["last_dedup_at"] is not None


def test_scheduler_runs_due_passes_in_the_background(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    clock = FakeClock()
    settings = {"autopilot_enabled": True, "decay_interval_secs": 3600}
    with clock_server(tmp_path, embedder, clock, **settings) as (_, client):
        client.autopilot_update_config(dedup_mode="merge", dedup_interval_hours=1)
        client.store_memory("ap-agent", "The user's favourite colour is blue.")
        client.store_memory("ap-agent", "The user's favourite colour is blue!")
        clock.advance(2 * HOUR)

        def completed() -> set[str]:
            return {j["type"] for j in client.ops_list_jobs() if j["status"] == "completed"}

        wait_for(lambda: {"dedup", "decay"} <= completed(), what="the scheduled passes")
        assert client.autopilot_status()["total_dedup_removed"] == 1
        assert client.decay_stats()["cycles_run"] >= 1
        dedup = next(j for j in client.ops_list_jobs() if j["type"] == "dedup")
        assert client.ops_get_job(dedup["id"])["result"]["duplicates_removed"] == 1
        with pytest.raises(NotFoundError):
            client.ops_get_job("job_missing")


def test_jobs_and_autopilot_need_a_global_admin(server: Any, http: httpx.Client) -> None:
    for body in (
        {"name": "writer", "scope": "write"},
        {"name": "tenant-admin", "scope": "admin", "namespaces": ["tenant-a"]},
    ):
        created = http.post("/admin/keys", json=body)
        assert created.status_code == 201, created.text
        with server.http(key=created.json()["key"]) as limited:
            for path in ("/ops/jobs", "/v1/admin/autopilot/status", "/v1/admin/ttl/stats"):
                assert limited.get(path).status_code == 403, (body, path)
    with server.http(key=None) as anonymous:
        assert anonymous.get("/ops/jobs").status_code == 401


# ------------------------------------------------------------------ resumption
AGENT = "resume-agent"
HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
PAIRS = 150


def _pairs() -> list[str]:
    texts = []
    for text in memory_texts(PAIRS, seed=99):
        texts += [text, text[:-1] + "!"]
    return texts


def _store_pairs(http: httpx.Client) -> set[str]:
    texts = _pairs()
    ids: set[str] = set()
    for start in range(0, len(texts), 500):
        body = {"agent_id": AGENT, "memories": [{"content": t} for t in texts[start : start + 500]]}
        answer = http.post("/v1/memories/store/batch", json=body)
        assert answer.status_code == 200, answer.text
        ids |= {m["id"] for m in answer.json()["stored"]}
    return ids


def _check_nothing_lost(http: httpx.Client, stored: set[str]) -> None:
    live = http.get(f"/v1/agents/{AGENT}/memories", params={"limit": 1000}).json()
    trashed = http.get("/v1/memory/deduplicated", params={"agent_id": AGENT}).json()["memories"]
    live_ids, trash_ids = {m["id"] for m in live}, [m["id"] for m in trashed]
    assert len(trash_ids) == len(set(trash_ids)), "a memory was trashed twice"
    assert not live_ids & set(trash_ids), "a memory is both live and trashed"
    assert live_ids | set(trash_ids) == stored, "a memory was lost"
    assert len(trash_ids) >= PAIRS  # every pair lost one copy (some groups may be larger)
    left = http.post("/v1/knowledge/deduplicate", json={"agent_id": AGENT, "dry_run": True})
    assert left.json()["duplicates_found"] == 0, "duplicates left unmerged"


def _running_dedup(http: httpx.Client) -> dict[str, Any] | None:
    for job in http.get("/ops/jobs").json():
        if job["type"] == "dedup" and job["status"] == "running" and job["processed"] > 0:
            return dict(job)
    return None


def test_a_pass_stopped_with_the_server_resumes_at_the_next_start(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    clock = FakeClock()
    settings = {"autopilot_enabled": True, "background_cpu_percent": 10}
    with clock_server(tmp_path, embedder, clock, **settings) as (server, client):
        client.autopilot_update_config(dedup_mode="merge", dedup_interval_hours=1)
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=300) as http:
            stored = _store_pairs(http)
            clock.advance(2 * HOUR)  # the scheduler starts the pass
            wait_for(
                lambda: _running_dedup(http) is not None, timeout=120, what="a dedup pass under way"
            )
            job = _running_dedup(http)
        assert job is not None
    # The server stopped mid-pass: the job was interrupted at a batch boundary.
    with clock_server(tmp_path, embedder, clock, **settings) as (server, client):
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=300) as http:
            wait_for(
                lambda: any(
                    j.get("resumed_from") == job["id"] and j["status"] == "completed"
                    for j in http.get("/ops/jobs").json()
                ),
                timeout=180,
                what="the resumed pass",
            )
            _check_nothing_lost(http, stored)


@pytest.mark.slow
def test_a_pass_killed_with_sigkill_resumes_without_loss_or_doubles(tmp_path: Path) -> None:
    env = {
        "DAKERA_BACKGROUND_CPU_PERCENT": "10",
        "DAKERA_AUTOPILOT_ENABLED": "false",
        "DAKERA_DECAY_INTERVAL_SECS": "0",
        "DAKERA_TTL_SWEEP_INTERVAL_SECS": "0",
        "RATE_LIMIT_RPS": "0",
    }
    headers = HEADERS
    first = spawn_server(tmp_path / "data", tmp_path / "first.log", **env)
    try:
        with httpx.Client(base_url=first.url, headers=headers, timeout=120) as http:
            stored = _store_pairs(http)

            def merge() -> None:
                with httpx.Client(base_url=first.url, headers=headers, timeout=300) as merging:
                    try:
                        merging.post(
                            "/v1/knowledge/deduplicate",
                            json={"agent_id": AGENT, "dry_run": False},
                        )
                    except httpx.TransportError:
                        pass  # the server is killed under it

            threading.Thread(target=merge, daemon=True).start()
            wait_for(
                lambda: _running_dedup(http) is not None, timeout=120, what="a dedup pass under way"
            )
            job = _running_dedup(http)
            first.process.kill()  # SIGKILL mid-pass
            first.process.wait()
        assert job is not None and 0 < job["processed"] < job["total"]
    finally:
        first.stop()
    second = spawn_server(tmp_path / "data", tmp_path / "second.log", **env)
    try:
        with httpx.Client(base_url=second.url, headers=headers, timeout=120) as http:
            wait_for(
                lambda: any(
                    j.get("resumed_from") == job["id"] and j["status"] == "completed"
                    for j in http.get("/ops/jobs").json()
                ),
                timeout=180,
                what="the resumed pass",
            )
            _check_nothing_lost(http, stored)
    finally:
        second.stop()


def test_unknown_trigger_action_is_refused(client: Any) -> None:
    with pytest.raises(ValidationError):
        client.autopilot_trigger("nap")
