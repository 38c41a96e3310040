"""Tool arguments into REST requests (``mcp/table.py``), results into text (``mcp/render.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dakera_server.errors import InvalidInput
from dakera_server.mcp import render
from dakera_server.mcp.table import Limits, route_call
from dakera_server.mcp.tools import TOOLS_BY_NAME


def test_arguments_go_to_path_query_and_body_under_their_rest_names() -> None:
    call = route_call(
        TOOLS_BY_NAME["dakera_graph_path"], {"from_id": "mem/a b", "to_id": "mem_b"}, None
    )
    assert (call.method, call.path, call.raw_path) == (
        "GET",
        "/v1/memories/mem/a b/path",
        "/v1/memories/mem%2Fa%20b/path",
    )
    assert call.query == [("to", "mem_b")] and call.body is None
    store = route_call(TOOLS_BY_NAME["add_memories"], {"text": "hello"}, "alice")
    assert store.body == {"content": "hello", "agent_id": "alice"}


def test_unknown_and_missing_arguments_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown argument 'colour'"):
        route_call(
            TOOLS_BY_NAME["dakera_recall"], {"agent_id": "a", "query": "q", "colour": 1}, None
        )
    with pytest.raises(InvalidInput, match="needs the 'query' argument"):
        route_call(TOOLS_BY_NAME["dakera_recall"], {"agent_id": "a"}, None)
    with pytest.raises(InvalidInput, match="needs the 'agent_id' argument"):
        route_call(TOOLS_BY_NAME["search_memory"], {"query": "q"}, None)


def test_a_fixed_filter_rides_on_every_delete_all() -> None:
    call = route_call(TOOLS_BY_NAME["delete_all_memories"], {}, "bob")
    assert call.method == "DELETE" and call.body == {
        "agent_id": "bob",
        "filter": {"min_importance": 0.0},
    }


@given(content=st.text(min_size=0, max_size=300), limit=st.integers(min_value=1, max_value=200))
def test_content_is_cut_to_the_limit_and_the_cut_is_said(content: str, limit: int) -> None:
    answer = {"memories": [{"memory": {"id": "m1", "content": content}, "score": 0.5}]}
    shown = render.memories("memories")(answer, {}, Limits(max_content_chars=limit))
    item = shown.structured["memories"][0]
    assert item["content"] == content[:limit]
    cut = len(content) > limit
    assert item.get("content_truncated", False) is cut
    assert (f"cut at {limit} of {len(content)} characters" in shown.text) is cut
    assert shown.structured["truncated_count"] == int(cut)


def test_rate_limit_errors_say_when_to_retry() -> None:
    text, structured = render.error_text(
        429, {"error": "Too many requests.", "code": "RATE_LIMIT_EXCEEDED"}, "3"
    )
    assert structured["retry_after"] == 3 and "Retry later, after 3 second(s)." in text


def test_the_docs_page_lists_every_tool_with_its_route_and_scope() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "mcp.md").read_text()
    rows = {line for line in page.splitlines() if line.startswith("| `")}
    for tool in TOOLS_BY_NAME.values():
        start = f"| `{tool.name}` | `{tool.method} {tool.route}` | {tool.scope.wire} |"
        assert any(row.startswith(start) for row in rows), f"docs/mcp.md lacks: {start}"
