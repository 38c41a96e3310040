"""Route coverage against the contract's route table (``shared/spec/routes.tsv``).

Every tier 1 and tier 2 route must be in the served OpenAPI document, and every tier 3 route
must be served too, except the surfaces other issues own (listed in ``OWNED_ELSEWHERE`` with
their issue). A route listed there that becomes served fails the test, so the list only ever
shrinks as those issues land.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

ROUTES_TSV = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "routes.tsv"
# (method, path prefix or exact path) -> the issue that builds it.
# Empty now that backups, import and export (issue 14) are served: every route is ours.
OWNED_ELSEWHERE: dict[tuple[str, str], str] = {}


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _owner(method: str, path: str) -> str | None:
    for (owned_method, prefix), issue in OWNED_ELSEWHERE.items():
        if owned_method in ("*", method) and (path == prefix or path.startswith(prefix + "/")):
            return issue
    return None


@pytest.fixture(scope="module")
def served(server: Any) -> set[tuple[str, str]]:
    with server.http() as http:
        document = http.get("/openapi.json").json()
    return {
        (method.upper(), _normal(path))
        for path, operations in document["paths"].items()
        for method in operations
    }


@pytest.mark.skipif(not ROUTES_TSV.exists(), reason=f"{ROUTES_TSV} is not on this machine")
def test_every_contract_route_is_served(served: set[tuple[str, str]]) -> None:
    with ROUTES_TSV.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) >= 200, "routes.tsv looks truncated"
    missing, now_served = [], []
    for row in rows:
        method, path, tier = row["method"], row["path"], row["tier"]
        if "LEGACY optional" in row["purpose"]:
            continue
        owner = _owner(method, path)
        is_served = (method, _normal(path)) in served
        if owner is not None:
            if is_served:
                now_served.append(f"{method} {path} is served: drop it from OWNED_ELSEWHERE")
            continue
        if not is_served:
            missing.append(f"tier {tier}: {method} {path} ({row['sdk_method']})")
    assert not missing, "routes of the contract not in /openapi.json:\n" + "\n".join(missing)
    assert not now_served, "\n".join(now_served)


def test_admin_routes_are_also_served_without_v1(served: set[tuple[str, str]]) -> None:
    admin = {(m, p) for m, p in served if p.startswith("/v1/admin/")}
    assert admin and all((m, p[len("/v1") :]) in served for m, p in admin)
