"""Every error is JSON ``{"error", "code"}`` with the right status, never a traceback or path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT_KEY


def assert_error(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert set(body) <= {"error", "code", "details", "resource"}
    for leak in ("Traceback", "/src/", "site-packages", ".py", "sqlite3"):
        assert leak not in answer.text


def test_malformed_json_is_400(http: Any) -> None:
    answer = http.post(
        "/v1/memory/store", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(answer, 400, "INVALID_REQUEST")


def test_unknown_route_is_404(http: Any) -> None:
    assert_error(http.get("/v1/nowhere"), 404, "ROUTE_NOT_FOUND")


def test_wrong_method_is_405(http: Any) -> None:
    assert_error(http.delete("/v1/memory/store"), 405, "METHOD_NOT_ALLOWED")


def test_missing_field_is_400(http: Any) -> None:
    assert_error(http.post("/v1/memory/recall", json={"agent_id": "a"}), 400, "INVALID_REQUEST")


def test_wrong_type_is_400(http: Any) -> None:
    answer = http.post("/v1/memory/recall", json={"agent_id": "a", "query": "q", "top_k": "many"})
    assert_error(answer, 400, "INVALID_REQUEST")


def test_body_that_is_not_an_object_is_400(http: Any) -> None:
    assert_error(http.post("/v1/memory/store", json=[1, 2]), 400, "INVALID_REQUEST")


def test_unknown_memory_is_404(http: Any) -> None:
    assert_error(http.get("/v1/memory/get/mem_nothing?agent_id=a"), 404, "VECTOR_NOT_FOUND")


def test_missing_key_is_401(server: Any) -> None:
    with server.http(key=None) as anonymous:
        assert_error(anonymous.get("/v1/agents"), 401, "AUTHENTICATION_REQUIRED")


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_wrong_key_is_401(server: Any, header: str) -> None:
    value = "Bearer wrong" if header == "Authorization" else "wrong"
    with server.http(key=None, headers={header: value}) as wrong:
        assert_error(wrong.get("/v1/agents"), 401, "INVALID_API_KEY")


def test_x_api_key_header_is_accepted(server: Any) -> None:
    with server.http(key=None, headers={"X-API-Key": ROOT_KEY}) as keyed:
        assert keyed.get("/v1/agents").status_code == 200


def test_unknown_sdk_key_raises_authentication_error(server: Any) -> None:
    from dakera import DakeraClient
    from dakera.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError):
        DakeraClient(server.url, api_key="not-a-key").list_agents()
