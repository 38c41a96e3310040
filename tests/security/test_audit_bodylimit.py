"""A request refused with 413 by the body-size limit is audited like any other request.

The body-size limit sits outside the audit layer (ARCHITECTURE.md's order), so it reports its
own refusals to the audit log; these tests run a real ``dakera-server serve`` process with the
audit log on and send one oversized request of each kind: a declared ``Content-Length`` over
the limit (refused before any body byte) and a chunked body that crosses it while streaming.
"""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from tests.conftest import ROOT_KEY
from tests.processes import spawn_server
from tests.security.test_audit import entries, requests_of

LIMIT = 4096
CHUNK = 1024
STORE = "/v1/memory/store"
USER_AGENT = "audit-413-test/1.0"
REQUIRED = {
    "timestamp", "method", "path", "status", "latency_ms", "key_name", "key_scope",
    "namespace", "agent_id", "ip", "user_agent",
}  # fmt: skip


def _send(url: str, head: str, body_chunks: list[bytes]) -> int:
    """Send a raw request, stop sending once the server answers, return the status code."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {STORE}?api_key={ROOT_KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {ROOT_KEY}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: application/json\r\n{head}\r\n".encode()
        )
        try:
            for chunk in body_chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered while the body streams
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while b"\r\n" not in data:
            received = sock.recv(65536)
            if not received:
                break
            data += received
    return int(data.split(b" ", 2)[1])


def test_both_kinds_of_413_are_audited_without_secrets(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(log),
        DAKERA_AUDIT_REQUEST_BODY="true",
        DAKERA_AUDIT_RESPONSE_BODY="true",
        DAKERA_MAX_BODY_SIZE=str(LIMIT),
    )
    secret_body = b'{"agent_id": "big", "content": "' + b"s" * (4 * LIMIT) + b'"}'
    try:
        declared = _send(server.url, f"Content-Length: {50 * 1024 * 1024}\r\n", [])
        chunked = _send(
            server.url,
            "Transfer-Encoding: chunked\r\n",
            [
                b"%x\r\n" % len(piece) + piece + b"\r\n"
                for piece in (secret_body[i : i + CHUNK] for i in range(0, len(secret_body), CHUNK))
            ]
            + [b"0\r\n\r\n"],
        )
        # A request under the limit afterwards: still audited normally, once.
        small = httpx.post(
            f"{server.url}{STORE}",
            headers={"Authorization": f"Bearer {ROOT_KEY}"},
            json={"agent_id": "small", "content": "fits"},
            timeout=30,
        )
    finally:
        server.stop()  # SIGTERM: the writer drains before the process exits
    assert (declared, chunked, small.status_code) == (413, 413, 200)
    text = log.read_text()
    assert ROOT_KEY not in text and "api_key=" not in text
    assert "authorization" not in text.lower()
    stores = [e for e in requests_of(entries(log)) if e["path"] == STORE]
    assert [e["status"] for e in stores] == [413, 413, 200], stores
    for entry in stores[:2]:
        assert REQUIRED <= set(entry), entry
        assert entry["method"] == "POST" and entry["ip"] == "127.0.0.1"
        assert entry["user_agent"] == USER_AGENT
        assert entry["latency_ms"] >= 0 and entry["timestamp"].endswith("Z")
        assert "request_body" not in entry  # the refused body is never logged, not even cut
        assert orjson.loads(json.dumps(entry["response_body"]))["code"] == "PAYLOAD_TOO_LARGE"
    declared_entry, chunked_entry, _ = stores
    # Refused before authentication ran: nobody is named. The chunked body was refused while
    # the handler read it, after authentication: the caller is known.
    assert declared_entry["key_name"] is None
    assert chunked_entry["key_name"] == "root" and chunked_entry["key_scope"] == "super_admin"
