"""API key lifecycle (dakera-api.md §3.11, §4.10, §9; security.md "API key lifecycle").

Everything goes through the real server: keys are created, used, rotated, deactivated and
deleted over HTTP (httpx and the official SDK), and through ``dakera-server keys`` on the data
directory of a running server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import AuthenticationError, AuthorizationError, NotFoundError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.processes import BIN
from tests.security.conftest import FakeClock, create_key

KEY_ID = re.compile(r"^dk_key_[0-9a-f]{8}$")
SECRET = re.compile(r"^dk_[0-9a-f]{32}$")


def as_key(server: RunningServer, secret: str) -> httpx.Client:
    return server.http(key=secret)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# ----------------------------------------------------------------------------- create
def test_create_answers_the_sdk_shape_once(keyserver: RunningServer) -> None:
    sdk = DakeraClient(keyserver.url, api_key=ROOT_KEY)
    before = int(time.time())
    made = sdk.create_key("svc", scope="write", namespaces=["team-a"], expires_in_days=90)
    assert KEY_ID.match(made["key_id"]) and SECRET.match(made["key"])
    assert made["key_id"] not in made["key"]
    assert made["name"] == "svc" and made["scope"] == "write"
    assert made["namespaces"] == ["team-a"]
    assert made["warning"]
    assert isinstance(made["created_at"], int) and made["created_at"] >= before
    assert made["expires_at"] - made["created_at"] == 90 * 86_400
    listed = sdk.list_keys()
    assert made["key_id"] in {k["key_id"] for k in listed["keys"]}
    assert listed["total"] == len(listed["keys"])
    described = sdk.get_key(made["key_id"])
    assert described["active"] is True and described["namespaces"] == ["team-a"]
    assert described["grants_version"] == 1
    for answer in (listed, described):
        assert made["key"] not in json.dumps(answer)
        assert '"key":' not in json.dumps(answer) and '"new_key":' not in json.dumps(answer)
    sdk.close()


def test_security_document_curl_examples_work_as_written(root: httpx.Client) -> None:
    # security.md, "API key lifecycle", steps 2-6 (with the key id where it shows `dk_abc123`).
    query = root.post(
        "/admin/keys",
        headers={"Content-Type": "application/json"},
        content='{"name":"query-service","scope":"read","expires_in_days":90}',
    )
    assert query.status_code == 201 and query.json()["scope"] == "read"
    tenant = root.post(
        "/admin/keys",
        content='{"name":"tenant-a","scope":"write","namespace":"tenant-a","expires_in_days":90}',
        headers={"Content-Type": "application/json"},
    )
    assert tenant.status_code == 201, tenant.text
    assert tenant.json()["namespaces"] == ["tenant-a"]
    app_key = root.post(
        "/admin/keys", json={"name": "tenant-a-app", "scope": "write", "namespace": "tenant-a"}
    )
    assert app_key.status_code == 201 and app_key.json()["expires_at"] is None
    listing = root.get("/admin/keys")
    assert listing.status_code == 200
    assert {"query-service", "tenant-a", "tenant-a-app"} <= {
        k["name"] for k in listing.json()["keys"]
    }
    key_id = query.json()["key_id"]
    assert root.get(f"/admin/keys/{key_id}/usage").json()["key_id"] == key_id
    assert root.delete(f"/admin/keys/{key_id}").status_code == 200
    assert root.get(f"/admin/keys/{key_id}").json()["code"] == "API_KEY_NOT_FOUND"


def test_a_secret_in_the_url_is_never_a_key_id(root: httpx.Client) -> None:
    secret = create_key(root, name="by-secret", scope="read")["key"]
    for method, path in (("GET", "/usage"), ("DELETE", ""), ("GET", "")):
        answer = root.request(method, f"/admin/keys/{secret}{path}")
        assert answer.status_code == 404 and answer.json()["code"] == "API_KEY_NOT_FOUND"
        assert secret not in answer.text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "scope": "read", "permissions": ["r"]}, 422, "UNPROCESSABLE_CONTENT"),
        ({"name": "x", "scope": "read", "namespace": "a", "namespaces": ["b"]}, 400, None),
        ({"name": "x" * 129, "scope": "read"}, 400, None),
        ({"name": "", "scope": "read"}, 400, None),
        ({"scope": "read"}, 400, None),
        ({"name": "x", "scope": "root"}, 400, None),
        ({"name": "x"}, 400, None),
        ({"name": "x", "scope": "read", "namespaces": ["bad name"]}, 400, None),
        ({"name": "x", "scope": "read", "namespaces": ["a*b"]}, 400, None),
        ({"name": "x", "scope": "read", "namespaces": ["n"] * 101}, 400, None),
        ({"name": "x", "scope": "read", "expires_in_days": 0}, 400, None),
        ({"name": "x", "scope": "read", "expires_in_days": "90"}, 400, None),
    ],
)
def test_create_refuses_bad_bodies(
    root: httpx.Client, body: dict[str, Any], status: int, code: str | None
) -> None:
    answer = root.post("/admin/keys", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == (code or "INVALID_REQUEST")


def test_name_of_128_characters_and_prefix_grants_are_accepted(root: httpx.Client) -> None:
    made = create_key(
        root, name="n" * 128, scope="read", namespaces=["_dakera_agent_mlx-*", "docs"]
    )
    assert made["namespaces"] == ["_dakera_agent_mlx-*", "docs"]


# ----------------------------------------------------------------------------- use
def test_scoped_key_is_allowed_and_refused_by_scope(keyserver: RunningServer) -> None:
    with keyserver.http() as root:
        read = create_key(root, name="reader", scope="read")["key"]
        write = create_key(root, name="writer", scope="write")["key"]
    writer = DakeraClient(keyserver.url, api_key=write)
    writer.store_memory("scoped-agent", "written with a write key")
    reader = DakeraClient(keyserver.url, api_key=read)
    assert reader.whoami().scope == "read"
    with pytest.raises(AuthorizationError):
        reader.store_memory("scoped-agent", "refused")
    with as_key(keyserver, read) as http:
        refused = http.post("/v1/memory/store", json={"agent_id": "a", "content": "x"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "INSUFFICIENT_SCOPE"
        assert "'write'" in refused.json()["error"]
        assert http.get("/admin/keys").json()["code"] == "INSUFFICIENT_SCOPE"
    writer.close()
    reader.close()


def test_key_forms_headers_and_query(keyserver: RunningServer) -> None:
    with keyserver.http() as root:
        secret = create_key(root, name="forms", scope="read")["key"]
    with httpx.Client(base_url=keyserver.url) as http:
        assert http.get("/v1/auth/whoami", headers={"X-API-Key": secret}).status_code == 200
        assert http.get("/v1/auth/whoami", params={"api_key": secret}).status_code == 200
        assert http.get("/v1/auth/whoami", headers={"Authorization": f"bearer {secret}"}).is_success
        none = http.get("/v1/auth/whoami")
        assert (none.status_code, none.json()["code"]) == (401, "AUTHENTICATION_REQUIRED")
        empty = http.get("/v1/auth/whoami", headers={"Authorization": "Bearer"})
        assert empty.status_code == 401
        for bad in ("dk_" + "0" * 32, secret[:-1], secret + "0", "x" * 5000, "test-key"):
            answer = http.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {bad}"})
            assert (answer.status_code, answer.json()["code"]) == (401, "INVALID_API_KEY")
            assert bad not in answer.text


def test_whoami_describes_a_restricted_key(keyserver: RunningServer) -> None:
    with keyserver.http() as root:
        made = create_key(root, name="tenant", scope="write", namespaces=["t-1"], expires_in_days=3)
    sdk = DakeraClient(keyserver.url, api_key=made["key"])
    me = sdk.whoami()
    assert (me.key_id, me.name, me.scope) == (made["key_id"], "tenant", "write")
    assert me.namespaces == ["t-1"] and me.unrestricted is False
    assert me.expires_at == made["expires_at"] and me.auth_enabled is True
    sdk.close()


# ----------------------------------------------------------------------------- lifecycle
def test_deactivate_and_delete_end_a_key(keyserver: RunningServer) -> None:
    sdk = DakeraClient(keyserver.url, api_key=ROOT_KEY)
    first = sdk.create_key("to-deactivate", scope="read")
    second = sdk.create_key("to-delete", scope="read")
    assert sdk.deactivate_key(first["key_id"])["active"] is False
    assert sdk.get_key(first["key_id"])["active"] is False
    with as_key(keyserver, first["key"]) as http:
        answer = http.get("/v1/auth/whoami")
        assert (answer.status_code, answer.json()["code"]) == (401, "INVALID_API_KEY")
    with pytest.raises(AuthenticationError):
        DakeraClient(keyserver.url, api_key=first["key"]).whoami()
    with keyserver.http() as root:
        patched = root.patch(f"/admin/keys/{first['key_id']}", json={"name": "x"})
        assert patched.status_code == 409
        assert root.post(f"/admin/keys/{first['key_id']}/rotate").status_code == 409
    assert sdk.delete_key(second["key_id"])["deleted"] is True
    with as_key(keyserver, second["key"]) as http:
        assert http.get("/v1/auth/whoami").json()["code"] == "INVALID_API_KEY"
    with pytest.raises(NotFoundError):
        sdk.get_key(second["key_id"])
    with pytest.raises(NotFoundError):
        sdk.delete_key(second["key_id"])
    sdk.close()


def test_update_renames_and_regrants_but_never_the_root_key(keyserver: RunningServer) -> None:
    sdk = DakeraClient(keyserver.url, api_key=ROOT_KEY)
    made = sdk.create_key("before", scope="write", namespaces=["a"])
    info = sdk.update_key(made["key_id"], name="after", namespaces=["b", "c*"])
    assert (info.name, info.namespaces, info.scope) == ("after", ["b", "c*"], "write")
    assert sdk.update_key(made["key_id"], all_namespaces=True).namespaces is None
    with keyserver.http() as root:
        assert root.patch("/admin/keys/root", json={"name": "x"}).status_code == 400
        assert root.delete("/admin/keys/root").status_code == 400
        assert root.get("/admin/keys/root").json()["scope"] == "super_admin"
        restricted = create_key(root, name="rsa", scope="super_admin", namespaces=["a"])["key"]
    with as_key(keyserver, restricted) as http:
        refused = http.patch(f"/admin/keys/{made['key_id']}", json={"name": "y"})
        assert (refused.status_code, refused.json()["code"]) == (403, "INSUFFICIENT_SCOPE")
        assert "unrestricted" in refused.json()["error"]
        # A restricted super_admin lists only keys inside its grants.
        names = {k["name"] for k in http.get("/admin/keys").json()["keys"]}
        assert "after" not in names and "rsa" in names
    sdk.close()


def test_expiry_and_rotation_grace_follow_the_clock(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    clock = FakeClock()
    server = start_server(tmp_path, embedder, clock=clock)
    try:
        with server.http() as root:
            expiring = create_key(root, name="exp", scope="read", expires_in_days=1)
            graced = create_key(root, name="graced", scope="read")
            rotated = root.post(f"/admin/keys/{graced['key_id']}/rotate", json={"grace_secs": 60})
            assert rotated.status_code == 200, rotated.text
            body = rotated.json()
            assert body["old_key_id"] == graced["key_id"] and body["key_id"] != graced["key_id"]
            assert body["old_key_expires_at"] == int(clock.now) + 60
            assert SECRET.match(body["new_key"]) and body["warning"]
            too_long = root.post(
                f"/admin/keys/{body['key_id']}/rotate", json={"grace_secs": 604_801}
            )
            assert too_long.status_code == 400
        with httpx.Client(base_url=server.url) as http:

            def status(secret: str) -> tuple[int, str | None]:
                answer = http.get("/v1/auth/whoami", headers={"X-API-Key": secret})
                return answer.status_code, answer.json().get("code")

            assert status(expiring["key"])[0] == 200
            assert status(graced["key"])[0] == 200 and status(body["new_key"])[0] == 200
            clock.advance(61)
            assert status(graced["key"]) == (401, "INVALID_API_KEY")
            assert status(body["new_key"])[0] == 200
            clock.advance(86_400)
            assert status(expiring["key"]) == (401, "API_KEY_EXPIRED")
        with server.http() as root:
            described = root.get(f"/admin/keys/{expiring['key_id']}").json()
            assert described["expired"] is True
            assert root.get(f"/admin/keys/{graced['key_id']}").json()["active"] is False
    finally:
        server.stop()


def test_rotate_without_grace_ends_the_old_key_at_once(keyserver: RunningServer) -> None:
    sdk = DakeraClient(keyserver.url, api_key=ROOT_KEY)
    made = sdk.create_key("rot", scope="write", namespaces=["r-ns"], expires_in_days=5)
    rotated = sdk.rotate_key(made["key_id"])  # body-less POST with Content-Type: json
    assert rotated["old_key_expires_at"] is None and rotated["old_key_id"] == made["key_id"]
    new = sdk.get_key(rotated["key_id"])
    assert (new["name"], new["scope"], new["namespaces"]) == ("rot", "write", ["r-ns"])
    assert new["expires_at"] == made["expires_at"]
    with as_key(keyserver, made["key"]) as http:
        assert http.get("/v1/auth/whoami").status_code == 401
    with as_key(keyserver, rotated["new_key"]) as http:
        assert http.get("/v1/auth/whoami").json()["key_id"] == rotated["key_id"]
    sdk.close()


# ----------------------------------------------------------------------------- usage
def test_usage_counts_requests_per_key(keyserver: RunningServer) -> None:
    with keyserver.http() as root:
        made = create_key(root, name="counted", scope="read")
    with as_key(keyserver, made["key"]) as http:
        for _ in range(3):
            assert http.get("/v1/auth/whoami").status_code == 200
        assert http.get("/v1/agents/usage-agent/memories").status_code == 200
        assert http.get("/admin/keys").status_code == 403
        assert (
            http.get("/v1/memory/get/nope", params={"agent_id": "usage-agent"}).status_code == 404
        )

    def usage() -> dict[str, Any]:
        with keyserver.http() as root:
            return dict(root.get(f"/admin/keys/{made['key_id']}/usage").json())

    wait_for(lambda: usage()["total_requests"] == 6)
    counts = usage()
    assert counts["successful_requests"] == 4 and counts["failed_requests"] == 2
    assert counts["rate_limited_requests"] == 0
    assert counts["bytes_transferred"] > 0 and counts["avg_latency_ms"] > 0
    assert counts["last_used_at"] >= int(time.time()) - 60
    endpoints = {e["endpoint"]: e["requests"] for e in counts["by_endpoint"]}
    assert endpoints["GET /v1/auth/whoami"] == 3
    assert endpoints["GET /v1/agents/{agent_id}/memories"] == 1
    namespaces = {n["namespace"]: n["requests"] for n in counts["by_namespace"]}
    assert namespaces["_dakera_agent_usage-agent"] == 2


def test_usage_counts_rate_limited_requests(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    server = start_server(tmp_path, embedder, rate_limit_rps=1, rate_limit_burst=1)
    try:
        with server.http() as root:
            made = create_key(root, name="limited", scope="read")
        with as_key(server, made["key"]) as http:
            statuses = [http.get("/v1/auth/whoami").status_code for _ in range(8)]
        assert 429 in statuses
        with server.http() as root:

            def usage() -> dict[str, Any]:
                while (
                    answer := root.get(f"/admin/keys/{made['key_id']}/usage")
                ).status_code == 429:
                    time.sleep(float(answer.headers["Retry-After"]))
                return dict(answer.json())

            wait_for(lambda: usage()["total_requests"] == 8)
            counts = usage()
        assert counts["rate_limited_requests"] == statuses.count(429)
        assert counts["failed_requests"] == statuses.count(429)
    finally:
        server.stop()


def test_keys_and_usage_survive_a_restart(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    server = start_server(tmp_path, embedder)
    with server.http() as root:
        made = create_key(root, name="durable", scope="read")
    with as_key(server, made["key"]) as http:
        for _ in range(4):
            http.get("/v1/auth/whoami")
    server.stop()
    again = start_server(tmp_path, embedder)
    try:
        with as_key(again, made["key"]) as http:
            assert http.get("/v1/auth/whoami").json()["key_id"] == made["key_id"]
        with again.http() as root:
            usage = root.get(f"/admin/keys/{made['key_id']}/usage").json()
            assert usage["total_requests"] >= 4
    finally:
        again.stop()


# ----------------------------------------------------------------------------- namespace keys
def test_namespace_keys_through_the_sdk(keyserver: RunningServer) -> None:
    sdk = DakeraClient(keyserver.url, api_key=ROOT_KEY)
    made = sdk.create_namespace_key("ns-one", "ns-app", scope="write", extra_namespaces=["x-*"])
    assert KEY_ID.match(made.key_id) and SECRET.match(made.key)
    assert made.namespaces == ["ns-one", "x-*"] and made.scope == "write"
    listed = sdk.list_namespace_keys("ns-one")
    assert made.key_id in {k.key_id for k in listed.keys} and listed.total == len(listed.keys)
    assert made.key_id not in {k.key_id for k in sdk.list_namespace_keys("ns-two").keys}
    usage = sdk.get_namespace_key_usage("ns-one", made.key_id)
    assert usage.key_id == made.key_id and usage.total_requests == 0
    info = sdk.update_namespace_key("ns-one", made.key_id, name="renamed")
    assert info.name == "renamed"
    assert sdk.delete_namespace_key("ns-one", made.key_id)["success"] is True
    with pytest.raises(NotFoundError):
        sdk.get_namespace_key_usage("ns-one", made.key_id)
    with keyserver.http() as root:
        too_high = root.post(
            "/v1/namespaces/ns-one/keys", json={"name": "n", "scope": "super_admin"}
        )
        assert too_high.status_code == 400
        strict = root.post("/v1/namespaces/ns-one/keys", json={"name": "n", "namespace": "z"})
        assert strict.status_code == 422
    sdk.close()


def test_a_namespace_admin_manages_only_keys_inside_its_grants(keyserver: RunningServer) -> None:
    with keyserver.http() as root:
        admin = create_key(root, name="team-admin", scope="admin", namespaces=["team-*"])["key"]
        outsider = create_key(root, name="outsider", scope="read", namespaces=["other"])
        wide = create_key(root, name="wide", scope="read", namespaces=["team-a", "other"])
    with as_key(keyserver, admin) as http:
        made = http.post(
            "/v1/namespaces/team-a/keys",
            json={"name": "child", "scope": "write", "extra_namespaces": ["team-a*"]},
        )
        assert made.status_code == 201, made.text
        assert made.json()["namespaces"] == ["team-a", "team-a*"]
        escalate = http.post(
            "/v1/namespaces/team-a/keys",
            json={"name": "bad", "scope": "read", "extra_namespaces": ["t*"]},
        )
        assert (escalate.status_code, escalate.json()["code"]) == (403, "NAMESPACE_ACCESS_DENIED")
        hidden = http.get("/v1/namespaces/other/keys")
        assert (hidden.status_code, hidden.json()["code"]) == (404, "NAMESPACE_NOT_FOUND")
        listed = {k["key_id"] for k in http.get("/v1/namespaces/team-a/keys").json()["keys"]}
        assert made.json()["key_id"] in listed and wide["key_id"] not in listed
        for key_id in (outsider["key_id"], wide["key_id"], "dk_key_00000000"):
            gone = http.delete(f"/v1/namespaces/team-a/keys/{key_id}")
            assert (gone.status_code, gone.json()["code"]) == (404, "API_KEY_NOT_FOUND")
        refused = http.post("/admin/keys", json={"name": "n", "scope": "read"})
        assert refused.status_code == 403
    with keyserver.http() as root:
        assert root.get(f"/admin/keys/{wide['key_id']}").status_code == 200


def test_key_events_name_the_key_never_the_secret(keyserver: RunningServer) -> None:
    subscription = keyserver.engine.events.subscribe(lambda e: e.event_type.startswith("key_"))
    try:
        with keyserver.http() as root:
            made = create_key(root, name="evented", scope="read")
            rotated = root.post(f"/admin/keys/{made['key_id']}/rotate").json()
            root.post(f"/admin/keys/{rotated['key_id']}/deactivate")
            root.delete(f"/admin/keys/{rotated['key_id']}")
        events = []
        while not subscription.queue.empty():
            events.append(subscription.queue.get_nowait())
    finally:
        subscription.close()
    kinds = [e.event_type for e in events]
    assert kinds == ["key_created", "key_rotated", "key_deactivated", "key_revoked"]
    assert events[0].details == {"key_id": made["key_id"], "name": "evented"}
    for event in events:
        text = json.dumps(event.to_wire())
        assert made["key"] not in text and rotated["new_key"] not in text


# ----------------------------------------------------------------------------- command line
def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "keys", *args],
        env={"DAKERA_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_manages_keys_of_a_running_server(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    server = start_server(tmp_path, embedder)
    try:
        created = run_cli(
            tmp_path,
            "create",
            "--name",
            "ops",
            "--scope",
            "write",
            "--namespace",
            "ops-*",
            "--expires-in-days",
            "30",
            "--json",
        )
        assert created.returncode == 0, created.stderr
        made = json.loads(created.stdout)
        assert SECRET.match(made["key"]) and made["namespaces"] == ["ops-*"]
        # The running server knows the new key on its first use.
        with as_key(server, made["key"]) as http:
            assert http.get("/v1/auth/whoami").json()["key_id"] == made["key_id"]
        human = run_cli(tmp_path, "create", "--name", "human", "--scope", "read")
        secret = re.search(r"dk_[0-9a-f]{32}", human.stdout)
        assert human.returncode == 0 and secret is not None
        listing = run_cli(tmp_path, "list")
        assert made["key_id"] in listing.stdout and "human" in listing.stdout
        assert made["key"] not in listing.stdout and secret.group(0) not in listing.stdout
        as_json = json.loads(run_cli(tmp_path, "list", "--json").stdout)
        assert {k["name"] for k in as_json["keys"]} == {"ops", "human"}
        rotated = json.loads(run_cli(tmp_path, "rotate", made["key_id"], "--json").stdout)
        assert rotated["old_key_id"] == made["key_id"]
        with as_key(server, rotated["key"]) as http:
            assert http.get("/v1/auth/whoami").status_code == 200
        revoked = run_cli(tmp_path, "revoke", rotated["key_id"])
        assert revoked.returncode == 0, revoked.stderr

        def refused() -> bool:
            with as_key(server, rotated["key"]) as http:
                return http.get("/v1/auth/whoami").status_code == 401

        wait_for(refused, timeout=15)
        assert run_cli(tmp_path, "revoke", "dk_key_00000000").returncode == 1
        bad = run_cli(tmp_path, "create", "--name", "x", "--scope", "nope")
        assert bad.returncode != 0
    finally:
        server.stop()
