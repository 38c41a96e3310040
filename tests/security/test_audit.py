"""The HTTP audit log: one JSON line per request and per business event, never a secret.

Real ``dakera-server serve`` processes where shutdown matters (SIGTERM must lose nothing),
in-thread servers elsewhere; the log file is read back and checked line by line.
"""

from __future__ import annotations

import json
import string
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.security.audit import (
    SECRET_FIELDS,
    AuditWriter,
    RequestRecord,
    render_body,
)
from tests.conftest import ROOT_KEY, start_server
from tests.processes import spawn_server

REQUIRED = {
    "timestamp",
    "method",
    "path",
    "status",
    "latency_ms",
    "key_name",
    "key_scope",
    "namespace",
    "agent_id",
    "ip",
    "user_agent",
}
BAD_KEY = "dk_0123456789abcdef0123456789abcdef"
PASSWORD = "hunter2-never-in-the-log"


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def requests_of(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in found if e["kind"] == "request"]


def test_each_request_is_one_entry_with_the_documented_fields(tmp_path: Path) -> None:
    log = tmp_path / "audit" / "audit.jsonl"
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(log),
        DAKERA_AUDIT_REQUEST_BODY="true",
        DAKERA_AUDIT_RESPONSE_BODY="true",
        DAKERA_AUDIT_MAX_BODY_SIZE="300",
    )
    root = {"Authorization": f"Bearer {ROOT_KEY}", "User-Agent": "dakera-py/0.14.1"}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/v1/auth/whoami", headers=root).status_code == 200
            stored = http.post(
                "/v1/memory/store",
                headers={"X-API-Key": ROOT_KEY},
                json={
                    "agent_id": "audited",
                    "content": "A long note. " * 80,
                    "metadata": {"password": PASSWORD, "note": "kept"},
                },
            )
            assert stored.status_code == 200
            memory_id = stored.json()["memory"]["id"]
            got = http.get(
                f"/v1/memory/get/{memory_id}", params={"agent_id": "audited"}, headers=root
            )
            assert got.status_code == 200
            assert http.get("/v1/audit", params={"api_key": ROOT_KEY}).status_code == 200
            denied = http.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {BAD_KEY}"})
            assert denied.status_code == 401
            assert http.get("/health").status_code == 200  # excluded by default
            policy = http.put(
                "/v1/namespaces/_dakera_agent_audited/memory_policy",
                headers=root,
                json={"dedup_on_store": True},
            )
            assert policy.status_code == 200
    finally:
        server.stop()  # SIGTERM: the writer drains before the process exits
    text = log.read_text()
    for secret in (ROOT_KEY, BAD_KEY, PASSWORD, "api_key="):
        assert secret not in text, secret
    assert "authorization" not in text.lower() and "x-api-key" not in text.lower()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    found = entries(log)
    requests = requests_of(found)
    assert [(e["method"], e["path"], e["status"]) for e in requests] == [
        ("GET", "/v1/auth/whoami", 200),
        ("POST", "/v1/memory/store", 200),
        ("GET", f"/v1/memory/get/{memory_id}", 200),
        ("GET", "/v1/audit", 200),
        ("GET", "/v1/auth/whoami", 401),
        ("PUT", "/v1/namespaces/_dakera_agent_audited/memory_policy", 200),
    ]
    for entry in requests:
        assert REQUIRED <= set(entry), entry
        assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
        assert entry["latency_ms"] >= 0 and entry["ip"] == "127.0.0.1"
    whoami, store, get, audit, refused, policy_entry = requests
    assert whoami["key_name"] == "root" and whoami["key_scope"] == "super_admin"
    assert whoami["user_agent"] == "dakera-py/0.14.1"
    assert store["agent_id"] == "audited" and store["namespace"] == "_dakera_agent_audited"
    assert store["request_body"]["truncated"] is True
    assert len(store["request_body"]["text"].encode()) <= 300
    assert get["agent_id"] == "audited"  # from the query string
    assert audit["key_name"] == "root"  # authenticated by ?api_key=, which is not logged
    assert refused["key_name"] is None and refused["key_scope"] is None
    assert refused["response_body"]["code"] == "INVALID_API_KEY"
    assert policy_entry["namespace"] == "_dakera_agent_audited"
    assert policy_entry["request_body"] == {"dedup_on_store": True}
    events = [e for e in found if e["kind"] == "event"]
    kinds = [e["event_type"] for e in events]
    assert "stored" in kinds and "policy_changed" in kinds
    stored_event = events[kinds.index("stored")]
    assert stored_event["agent_id"] == "audited" and stored_event["memory_id"] == memory_id
    assert "content" not in stored_event


def test_n_requests_then_sigterm_leaves_n_entries(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(log),
        RATE_LIMIT_RPS="0",
    )
    count = 300
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": ROOT_KEY}) as http:
            for index in range(count):
                path = "/v1/auth/whoami" if index % 2 else "/v1/capabilities"
                assert http.get(path).status_code == 200
    finally:
        server.stop()
    requests = requests_of(entries(log))
    assert len(requests) == count
    assert {e["path"] for e in requests} == {"/v1/auth/whoami", "/v1/capabilities"}


def test_stdout_when_no_path_and_exclusions_can_be_cleared(tmp_path: Path) -> None:
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_EXCLUDE_PATHS="",
    )
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert httpx.get(f"{server.url}/v1/auth/whoami").status_code == 401
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if line.startswith('{"kind"')]
    found = [json.loads(line) for line in lines]
    paths = [e["path"] for e in found]
    assert "/metrics" in paths and "/v1/auth/whoami" in paths
    assert "/health/ready" in paths  # the readiness probe of spawn_server, not excluded now


def test_refusals_and_key_secrets_in_bodies(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    log = tmp_path / "audit.jsonl"
    running = start_server(
        tmp_path / "data",
        embedder,
        audit_enabled=True,
        audit_log_path=log,
        audit_request_body=True,
        audit_response_body=True,
        rate_limit_rps=1,
        rate_limit_burst=1,
    )
    try:
        with running.http() as http:
            created = http.post("/admin/keys", json={"name": "audited-key", "scope": "read"})
            assert created.status_code == 201
            secret = created.json()["key"]
            rotated = http.post(f"/admin/keys/{created.json()['key_id']}/rotate")
            assert rotated.status_code == 200, rotated.text
            new_secret = rotated.json()["new_key"]
            codes = [http.get("/v1/auth/whoami").status_code for _ in range(3)]
            assert 429 in codes
    finally:
        running.stop()
    text = log.read_text()
    assert secret not in text and new_secret not in text and ROOT_KEY not in text
    found = requests_of(entries(log))
    create = next(e for e in found if e["path"] == "/admin/keys")
    assert create["response_body"]["key"] == "[REDACTED]"
    assert create["response_body"]["name"] == "audited-key"
    rotate = next(e for e in found if e["path"].endswith("/rotate"))
    assert rotate["response_body"]["new_key"] == "[REDACTED]"
    assert any(e["status"] == 429 for e in found)
    events = [e for e in entries(log) if e["kind"] == "event"]
    assert any(e["event_type"].startswith("key_") for e in events)


def test_full_queue_drops_and_counts_but_close_drains(tmp_path: Path) -> None:
    log = tmp_path / "small.jsonl"
    writer = AuditWriter(log, capacity=2)
    caller = Caller("k", "name", Scope.READ)
    submitted = 5000
    for index in range(submitted):
        writer.submit(
            RequestRecord(
                started=1.0 + index,
                method="GET",
                path=f"/p/{index}",
                query=b"",
                status=200,
                latency_ms=0.1,
                caller=caller,
                target=None,
                ip="127.0.0.1",
                user_agent=None,
                secrets=(),
                max_body=10,
            )
        )
    writer.close()
    written = len(log.read_text().splitlines())
    assert writer.dropped > 0
    assert written == writer.written == submitted - writer.dropped


# ------------------------------------------------------------------- redaction

SECRET_VALUE = st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=24)
JSON_KEYS = st.sampled_from([*sorted(SECRET_FIELDS), "Key", "NEW_KEY", "note", "id", "items"])


def nested(secret_value: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.integers(-(2**53), 2**53), st.booleans(), st.none(), st.text(max_size=8))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(JSON_KEYS, st.one_of(inner, secret_value), max_size=4),
        ),
        max_leaves=20,
    )


def split_strings(value: Any, secret: bool = False) -> tuple[list[str], list[str]]:
    """(strings held under secret-named keys, every other string), however deep."""
    hidden: list[str] = []
    shown: list[str] = []
    if isinstance(value, str):
        (hidden if secret else shown).append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            shown.append(key)
            h, s = split_strings(item, secret or key.lower() in SECRET_FIELDS)
            hidden += h
            shown += s
    elif isinstance(value, list):
        for item in value:
            h, s = split_strings(item, secret)
            hidden += h
            shown += s
    return hidden, shown


@settings(max_examples=200, deadline=None)
@given(body=nested(SECRET_VALUE.map(lambda s: "SECRET" + s)), cut=st.integers(1, 400))
def test_secret_fields_never_survive_rendering(body: Any, cut: int) -> None:
    raw = orjson.dumps(body)
    hidden, shown = split_strings(body)
    # A value may legitimately appear elsewhere in the body (under a non-secret key).
    leaked = [h for h in hidden if h.startswith("SECRET") and not any(h in t for t in shown)]
    for complete, data in ((True, raw), (False, raw[:cut])):
        rendered = orjson.dumps(render_body(data, complete, 10_000, ())).decode()
        for value in leaked:
            assert value not in rendered


@settings(max_examples=100, deadline=None)
@given(secret=SECRET_VALUE, before=st.text(max_size=20), limit=st.integers(0, 200))
def test_the_presented_key_never_survives_rendering(secret: str, before: str, limit: int) -> None:
    body = orjson.dumps({"content": before + secret + before, "list": [secret]})
    for complete in (True, False):
        rendered = orjson.dumps(render_body(body, complete, limit, (secret,))).decode()
        assert secret not in rendered


def test_sigterm_with_an_open_event_stream_still_drains_the_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(log),
    )
    opened = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream(
                "GET", f"{server.url}/v1/events/stream", params={"api_key": ROOT_KEY}, timeout=60
            ) as response:
                for _ in response.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass  # the server cancels the stream on shutdown

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        assert opened.wait(10)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": ROOT_KEY}) as http:
            for _ in range(20):
                assert http.get("/v1/auth/whoami").status_code == 200
        started = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=30)
        assert time.monotonic() - started < 15  # bounded by the graceful-shutdown timeout
    finally:
        server.stop()
        listener.join(timeout=10)
    requests = requests_of(entries(log))
    assert sum(e["path"] == "/v1/auth/whoami" for e in requests) == 20
    stream = [e for e in requests if e["path"] == "/v1/events/stream"]
    assert len(stream) == 1 and stream[0]["status"] == 200
