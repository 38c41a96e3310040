"""Import parsing (formats.py): any input gives rows or numbered row errors, never a crash."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.portability.formats import (
    ParsedRow,
    RowError,
    detect_format,
    parse_rows,
    unix_seconds,
)
from dakera_server.errors import InvalidInput

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(JSON.map(orjson.dumps), st.binary(max_size=40)), max_size=12))
def test_any_jsonl_gives_rows_or_numbered_errors(lines: list[bytes]) -> None:
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    try:
        _, rows = parse_rows(data, "jsonl")
        parsed = list(rows)
    except InvalidInput:
        return  # a whole-file refusal (e.g. damaged gzip) is a clean 400
    for item in parsed:
        assert isinstance(item, ParsedRow | RowError)
        assert item.row >= 1


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_csv_text_gives_rows_or_numbered_errors(text: str) -> None:
    _, rows = parse_rows(("content,tags,metadata\n" + text).encode(), "csv")
    assert all(isinstance(item, ParsedRow | RowError) for item in rows)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"messages": []}', "zep"),
        (b'{"results": []}', "mem0"),
        (b'[{"memory": "x"}]', "mem0"),
        (b'{"content": "a"}\n{"content": "b"}', "jsonl"),
        (b"content,tags\nx,y\n", "csv"),
        (b"PK\x03\x04rest", "openmemory"),
    ],
)
def test_format_detection(data: bytes, expected: str) -> None:
    assert detect_format(data) == expected


def test_timestamps() -> None:
    assert unix_seconds("2024-08-02T12:00:00Z") == 1722600000
    assert unix_seconds("0001-01-01T00:00:00Z") is None
    assert unix_seconds("1722600000") == 1722600000
    assert unix_seconds("not a time") == "not a time"  # left for the row check to refuse
