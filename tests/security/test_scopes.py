"""The scope matrix: every served route × every kind of key, against the declared table.

The table is not written here: it is ``scope_table(app)``, derived from the routes' own
decorators, so a route another developer adds later is walked too (the pattern of Qdrant's
``tests/consensus_tests/auth_tests``). Each route gets a request with an invalid JSON body
(``[]``) and dummy path parameters: scope checks run before body validation, so a key below the
route's scope must get 403 ``INSUFFICIENT_SCOPE`` naming the scope needed, no key or a bad key
401, and a key at or above it anything but 401/403.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dakera_server.api.scopes import RouteScope, scope_table
from dakera_server.engine.access import Scope
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import RunningServer, start_server
from tests.security.conftest import create_key

ROUTES_TSV = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "routes.tsv"
TENANT_A = ["tenant-a", "_dakera_agent_tenant-a-*"]
TENANT_B = ["tenant-b", "_dakera_agent_tenant-b-*"]
PARAMS = {
    "namespace": "tenant-a",
    "agent_id": "tenant-a-agent",
    "key_id": "dk_key_00000000",
    "memory_id": "mem_matrix",
    "session_id": "sess-matrix",
}
# Routes whose handler would change the server for every later request: only refusals are
# checked for them (no key, bad key, scope too low), never an allowed call.
DENY_ONLY = re.compile(r"/ops/shutdown$|/maintenance/enable$|/backups/restore$|/encryption/")


@dataclass(frozen=True)
class KeyKind:
    """One kind of caller in the matrix."""

    name: str
    scope: Scope | None  # None: no key, or a key the server does not know
    restricted: bool = False
    own_namespace: bool = True  # restricted to the dummy namespace used in paths


KINDS = [
    KeyKind("none", None),
    KeyKind("bad", None),
    KeyKind("read", Scope.READ),
    KeyKind("write", Scope.WRITE),
    KeyKind("admin", Scope.ADMIN),
    KeyKind("super_admin", Scope.SUPER_ADMIN),
    KeyKind("tenant_a_write", Scope.WRITE, restricted=True),
    KeyKind("tenant_b_write", Scope.WRITE, restricted=True, own_namespace=False),
    KeyKind("tenant_a_admin", Scope.ADMIN, restricted=True),
]


@dataclass
class Matrix:
    server: RunningServer
    table: list[RouteScope]
    secrets: dict[str, str | None]


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[Matrix]:
    # The opt-in lanes on, so their routes are walked for real (not answered 501 early).
    server = start_server(
        tmp_path_factory.mktemp("matrix"),
        embedder,
        attachments_enabled=True,
        documents_enabled=True,
        records_enabled=True,
    )
    secrets: dict[str, str | None] = {"none": None, "bad": "dk_" + "0" * 32}
    with server.http() as root:
        for kind in KINDS:
            if kind.scope is None:
                continue
            grants = (TENANT_A if kind.own_namespace else TENANT_B) if kind.restricted else None
            body: dict[str, Any] = {"name": kind.name, "scope": kind.scope.wire}
            if grants is not None:
                body["namespaces"] = grants
            secrets[kind.name] = create_key(root, **body)["key"]
    table = scope_table(server.uvicorn_server.config.app)
    yield Matrix(server, table, secrets)
    server.stop()


def fill(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS.get(m.group(1), "matrix"), path)


def expectation(route: RouteScope, kind: KeyKind) -> str:
    """``allow``, ``401`` or ``403`` for ``kind`` calling ``route``."""
    if route.scope is Scope.PUBLIC:
        return "allow"
    if kind.scope is None:
        return "401"
    if kind.scope < route.scope or (route.unrestricted and kind.restricted):
        return "403"
    return "allow"


def call(http: httpx.Client, route: RouteScope, secret: str | None) -> tuple[int, dict[str, Any]]:
    """Send one request; read the body only when it is JSON (SSE routes would never end)."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    content = None if route.method in ("GET", "HEAD") else b"[]"
    for _ in range(5):
        with http.stream(route.method, fill(route.path), headers=headers, content=content) as r:
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            if r.headers.get("content-type", "").startswith("application/json"):
                r.read()
                body = r.json()
                return r.status_code, body if isinstance(body, dict) else {}
            return r.status_code, {}
    raise AssertionError(f"{route.method} {route.path} stayed rate limited")


def verdict(route: RouteScope, kind: KeyKind, status: int, body: dict[str, Any]) -> str | None:
    """A description of what is wrong, or ``None`` when the answer fits the table."""
    expected = expectation(route, kind)
    code = body.get("code")
    where = f"{kind.name:>15} {route.method:<6} {route.path}"
    if expected == "401":
        if status != 401 or code not in ("AUTHENTICATION_REQUIRED", "INVALID_API_KEY"):
            return f"{where}: expected 401, got {status} {code}"
    elif expected == "403":
        if status != 403 or code != "INSUFFICIENT_SCOPE":
            return f"{where}: expected 403 INSUFFICIENT_SCOPE, got {status} {code}"
        if f"'{route.scope.wire}'" not in str(body.get("error")):
            return f"{where}: 403 does not name the '{route.scope.wire}' scope: {body}"
    else:
        if status == 401 or (status == 403 and code == "INSUFFICIENT_SCOPE"):
            return f"{where}: expected to be allowed, got {status} {code}"
        if kind.restricted and kind.own_namespace and status == 403:
            return f"{where}: refused on its own namespace: {status} {code}"
    return None


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_every_route_answers_each_key_kind_as_declared(matrix: Matrix, kind: KeyKind) -> None:
    problems = []
    checked = 0
    http = httpx.Client(base_url=matrix.server.url, timeout=30.0)
    for route in matrix.table:
        if expectation(route, kind) == "allow" and DENY_ONLY.search(route.path):
            continue
        status, body = call(http, route, matrix.secrets[kind.name])
        checked += 1
        problem = verdict(route, kind, status, body)
        if problem:
            problems.append(problem)
    http.close()
    assert checked >= 40, "the scope table is suspiciously small"
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_scope_and_both_sides(matrix: Matrix) -> None:
    declared = {route.scope for route in matrix.table}
    assert declared >= {Scope.PUBLIC, Scope.READ, Scope.WRITE, Scope.ADMIN, Scope.SUPER_ADMIN}
    assert any(route.unrestricted for route in matrix.table)
    sides = {expectation(r, k) for r in matrix.table for k in KINDS}
    assert sides == {"allow", "401", "403"}


def test_non_api_routes_need_a_key_too(matrix: Matrix) -> None:
    with httpx.Client(base_url=matrix.server.url) as http:
        for path in ("/openapi.json", "/docs", "/no/such/route"):
            assert http.get(path).status_code == 401, path


def test_every_served_path_has_a_declared_scope(matrix: Matrix) -> None:
    with matrix.server.http() as root:
        document = root.get("/openapi.json").json()
    declared = {(r.method, r.path) for r in matrix.table}
    for path, operations in document["paths"].items():
        for method in operations:
            assert (method.upper(), path) in declared, f"{method} {path} has no scope"
            assert operations[method].get("x-dakera-scope"), f"{method} {path}"


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.mark.skipif(not ROUTES_TSV.exists(), reason=f"{ROUTES_TSV} is not on this machine")
def test_every_route_in_routes_tsv_served_has_a_scope(matrix: Matrix) -> None:
    """The declared scope is at least routes.tsv's (stricter where security.md says so)."""
    with ROUTES_TSV.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    wanted = {(r["method"], _normal(r["path"])): Scope[r["scope"].upper()] for r in rows}
    served = 0
    problems = []
    for route in matrix.table:
        candidates = [_normal(route.path)]
        if route.path.startswith("/admin/"):
            candidates.append("/v1" + _normal(route.path))
        for candidate in candidates:
            tsv_scope = wanted.get((route.method, candidate))
            if tsv_scope is None:
                continue
            served += 1
            if route.scope < tsv_scope:
                problems.append(
                    f"{route.method} {route.path}: declared {route.scope.wire}, "
                    f"routes.tsv says {tsv_scope.wire}"
                )
    assert served >= 40, "few served routes matched routes.tsv: is the path form off?"
    assert not problems, "\n".join(problems)
