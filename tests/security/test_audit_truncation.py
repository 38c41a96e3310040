"""A truncated audit body never exceeds ``DAKERA_AUDIT_MAX_BODY_SIZE`` plus a fixed wrapper.

The limit bounds what the log line carries: text that grows when escaped (quotes, backslashes,
control characters) is cut on its escaped size, so a body of quotes does not come out twice as
long as configured (an outside audit measured 151 bytes for a limit of 100 before this).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.security.redaction import TRUNCATION_OVERHEAD, render_body
from tests.conftest import start_server
from tests.security.test_audit import entries, requests_of


@settings(max_examples=400, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=800).map(lambda t: orjson.dumps({"content": t})),
        st.text('"\\\n\t\x01é€😀a', max_size=800).map(str.encode),
    ),
    limit=st.integers(0, 600),
    complete=st.booleans(),
)
def test_rendered_body_is_bounded(body: bytes, limit: int, complete: bool) -> None:
    rendered = render_body(body, complete, limit, ())
    assert len(orjson.dumps(rendered)) <= limit + TRUNCATION_OVERHEAD
    if isinstance(rendered, dict) and rendered.get("truncated") is True:
        assert set(rendered) == {"truncated", "size", "text"}


def test_a_body_of_quotes_is_cut_to_the_limit_in_the_log(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    log = tmp_path / "audit.jsonl"
    running = start_server(
        tmp_path / "data",
        embedder,
        audit_enabled=True,
        audit_log_path=log,
        audit_request_body=True,
        audit_max_body_size=100,
    )
    content = 'He said "yes", then "no", then "maybe" \\ and left. ' * 8
    try:
        with running.http() as http:
            stored = http.post("/v1/memory/store", json={"agent_id": "quoted", "content": content})
            assert stored.status_code == 200, stored.text
    finally:
        running.stop()
    entry = next(e for e in requests_of(entries(log)) if e["path"] == "/v1/memory/store")
    body = entry["request_body"]
    assert body["truncated"] is True and body["text"].startswith('{"agent_id":"quoted"')
    assert len(orjson.dumps(body)) <= 100 + TRUNCATION_OVERHEAD
