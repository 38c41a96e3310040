"""Input validation: allow-lists for structured fields, precise detectors for free text, limits.

Attack payloads come from the public corpora in ``<repo>/../shared/corpora`` (test data, never
part of the package); benign text from LoCoMo (``<repo>/../shared/bench``) and the hand-written
agent memories of ``benign_texts.json``.
"""

from __future__ import annotations

import json
import socket
import string
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dakera_server.errors import DakeraError
from dakera_server.security.inspection.detectors import CATEGORIES, detect, detect_raw, plain
from dakera_server.security.inspection.ssrf import METADATA_TEXT
from dakera_server.security.validation import RequestValidator
from tests.conftest import ROOT_KEY, RunningServer

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO.parent / "shared" / "corpora"
LOCOMO = REPO.parent / "shared" / "bench" / "locomo-dev.json"
BENIGN = Path(__file__).with_name("benign_texts.json")
needs_corpora = pytest.mark.skipif(
    not CORPORA.is_dir(), reason=f"attack corpora not found at {CORPORA}"
)
needs_locomo = pytest.mark.skipif(not LOCOMO.is_file(), reason=f"LoCoMo not found at {LOCOMO}")
VALIDATOR = RequestValidator(["/v1/agents/{agent_id}/memories", "/v1/memory/get/{memory_id}"])
STRUCTURED: dict[str, Callable[[str], Any]] = {
    "agent_id": lambda p: {"agent_id": p, "content": "x"},
    "namespace": lambda p: {"namespace": p},
    "session_id": lambda p: {"session_id": p},
    "memory_ids": lambda p: {"memory_ids": [p]},
    "tags": lambda p: {"memories": [{"content": "x", "tags": [p]}]},
    "metadata key": lambda p: {"metadata": {p: 1}},
    "url": lambda p: {"webhook_url": p},
}
# a value made of these cannot be an id, a namespace or a session id
METACHARACTERS = set("'\"`;|&$<>(){}[]\\/%*?!=,~^ \t\r\n\x00")


def refused(document: Any) -> bool:
    try:
        VALIDATOR.check_document(document, None)
    except DakeraError:
        return True
    return False


@cache
def corpus(category: str) -> tuple[str, ...]:
    lines = [
        line
        for path in sorted((CORPORA / category).glob("*.txt"))
        for line in path.read_text(errors="replace").splitlines()
        if line.strip()
    ]
    return tuple(lines[:: max(1, len(lines) // 3000)])  # dotdotpwn alone has 21k lines


def categories() -> list[str]:
    return sorted(d.name for d in CORPORA.iterdir() if d.is_dir())


@cache
def all_payloads() -> tuple[str, ...]:
    if not CORPORA.is_dir():
        return ("' OR '1'='1",)
    return tuple(p for c in categories() for p in corpus(c))


@cache
def benign() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = json.loads(BENIGN.read_text())
    if LOCOMO.is_file():
        conversations = json.loads(LOCOMO.read_text())
        sets["LoCoMo"] = [
            turn["text"]
            for conversation in conversations
            for key, session in conversation["conversation"].items()
            if key.startswith("session_") and isinstance(session, list)
            for turn in session
        ]
    return sets


# -- precision and reach of the checks themselves ------------------------------------------------
@needs_locomo
def test_benign_free_text_is_refused_at_most_half_a_percent() -> None:
    items = [text for texts in benign().values() for text in texts]
    hits = [text for text in items if refused({"content": text})]
    assert len(items) > 3000
    assert len(hits) / len(items) <= 0.005, hits


@pytest.mark.parametrize("category", ["chat prose", "shell commands", "code", "HTML and markdown"])
def test_everyday_agent_text_passes(category: str) -> None:
    hits = [text for text in benign()[category] if detect(text)]
    assert hits == []


@needs_corpora
@pytest.mark.parametrize("field", list(STRUCTURED))
def test_payloads_in_structured_fields_are_refused_at_least_99_percent(field: str) -> None:
    total = passed_total = 0
    for category in categories():
        lines = corpus(category)
        passed = [p for p in lines if not refused(STRUCTURED[field](p))]
        # >= 99 % per cell; the few that pass are plain words or public URLs ("AND 1",
        # "https://example.com/…?url=http://public.example/")
        assert len(passed) / len(lines) <= 0.01, (category, passed[:10])
        total += len(lines)
        passed_total += len(passed)
    assert passed_total / total <= 0.01


@needs_corpora
@settings(max_examples=300, deadline=None)
@given(
    payload=st.sampled_from(all_payloads()),
    field=st.sampled_from(["agent_id", "namespace", "session_id", "memory_ids"]),
)
def test_a_payload_with_a_metacharacter_never_passes_an_id_field(payload: str, field: str) -> None:
    if METACHARACTERS & set(payload):
        assert refused(STRUCTURED[field](payload))


@pytest.mark.parametrize(
    ("payload", "category"),
    [
        ("' OR '1'='1", "sql injection"),
        ("x'; DROP TABLE users--", "sql injection"),
        ('{"$where": "sleep(5000)"}', "nosql injection"),
        ("; rm -rf /", "command injection"),
        ("$(cat /etc/passwd)", "command injection"),
        ("../../../../etc/passwd", "path traversal"),
        ("%2e%2e%2f%2e%2e%2fetc", "path traversal"),
        ("file\x00.txt", "path traversal"),
        ("<script>alert(1)</script>", "xss"),
        ('<img src=x onerror="alert(1)">', "xss"),
        ("see http://169.254.169.254/latest/meta-data/", "ssrf"),
        ("http://2130706433/admin", "ssrf"),
        ("a%0d%0aSet-Cookie: session=1", "header injection"),
    ],
)
def test_detectors_name_the_category(payload: str, category: str) -> None:
    assert detect(payload) == category


# No "-", ":", "=", ";" or "#": with them "a'--" or "fd00:ec2::254" are real detections.
BENIGN_ALPHABET = st.characters(
    categories=("L", "N", "Zs"), include_characters=".,!?()'", exclude_characters="\x00"
)
# Keys named like URL fields (``f_uri``, ``f_x_endpoint``) are checked as URLs on purpose.
SAFE_KEYS = st.from_regex(r"\Af_[a-z][a-z0-9_]{0,12}\Z").filter(
    lambda key: not key.endswith(("_url", "_uri", "_endpoint", "_webhook"))
)


def _no_metadata_target(text: str) -> bool:
    """Digits and dots can spell ``169.254.169.254``: a real detection, not a false one."""
    low = text.lower()
    return not any(marker in low for marker in METADATA_TEXT)


BENIGN_TEXT = st.text(BENIGN_ALPHABET).filter(_no_metadata_target)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | BENIGN_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SAFE_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(BENIGN_ALPHABET, max_size=400).filter(_no_metadata_target))
def test_random_benign_text_passes(text: str) -> None:
    assert detect(text) is None, text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.dictionaries(SAFE_KEYS, JSON_VALUES, max_size=6))
def test_random_benign_json_passes(document: dict[str, Any]) -> None:
    VALIDATOR.check_document(document, None)
    VALIDATOR.check_document({"metadata": document, "filter": document}, None)


@needs_corpora
def test_the_plain_text_shortcut_never_hides_a_detection() -> None:
    lines = [line for category in categories() for line in corpus(category)]
    lines += [text for texts in benign().values() for text in texts]
    assert [line for line in lines if plain(line) and detect_raw(line) is not None] == []


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["union", "select", "null", "and", "or", "1", "--", "0x2e", "order", "by"])
        | st.text(st.characters(categories=("L", "N")), max_size=6),
        max_size=8,
    ).map(" ".join)
)
def test_the_plain_text_shortcut_on_keyword_soup(text: str) -> None:
    if plain(text):
        assert detect_raw(text) is None


def nested(depth: int) -> dict[str, Any]:
    """A JSON object whose nesting depth is ``depth`` (a top-level object is depth 1)."""
    document: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth - 1):
        document = {"a": document}
    return document


def test_depth_32_is_accepted_and_33_refused() -> None:
    VALIDATOR.check_document(nested(32), None)
    with pytest.raises(DakeraError, match="deeper than 32"):
        VALIDATOR.check_document(nested(33), None)
    with pytest.raises(DakeraError, match="deeper than 32"):
        VALIDATOR.check_body(b"[" * 2000 + b"]" * 2000, "application/json")


# -- through a real server ---------------------------------------------------------------------
def _refusal(answer: httpx.Response, *needles: str, payload: str | None = None) -> str:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"error", "code"} and body["code"] == "INVALID_REQUEST"
    for needle in needles:
        assert needle in body["error"], body["error"]
    if payload is not None and len(payload) > 3:
        assert payload not in answer.text, "the error body echoes the payload"
    return str(body["error"])


@pytest.mark.parametrize(
    "payload",
    ["' OR '1'='1", "{$gt: ''}", "; id", "../../etc/passwd", "<svg/onload=alert(1)>", "a\r\nb"],
)
def test_store_refuses_payloads_in_agent_id(http: httpx.Client, payload: str) -> None:
    answer = http.post("/v1/memory/store", json={"agent_id": payload, "content": "hello"})
    _refusal(answer, "agent_id", payload=payload)


@pytest.mark.parametrize(
    ("content", "category"),
    [
        ("x' OR '1'='1' --", "sql injection"),
        ('{"$ne": null}', "nosql injection"),
        ("run this: `cat /etc/passwd`", "command injection"),
        ("..%2f..%2f..%2fetc%2fpasswd", "path traversal"),
        ("<script>document.cookie</script>", "xss"),
        ("fetch http://metadata.google.internal/computeMetadata/v1/", "ssrf"),
        ("x%0d%0aLocation: http://evil.example", "header injection"),
    ],
)
def test_free_text_detections_name_category_and_field(
    http: httpx.Client, agent_id: str, content: str, category: str
) -> None:
    answer = http.post("/v1/memory/store", json={"agent_id": agent_id, "content": content})
    assert _refusal(answer, category, "'content'", payload=content)
    assert http.get(f"/v1/agents/{agent_id}/memories").json() == []


def test_batch_with_one_bad_item_is_refused_whole(http: httpx.Client, agent_id: str) -> None:
    memories: list[dict[str, Any]] = [{"content": f"note {i}", "tags": ["ok"]} for i in range(4)]
    memories[2]["tags"] = ["<script>"]
    answer = http.post(
        "/v1/memories/store/batch", json={"agent_id": agent_id, "memories": memories}
    )
    _refusal(answer, "memories[2].tags[0]")
    assert http.get(f"/v1/agents/{agent_id}/memories").json() == []


def test_benign_memories_are_stored(http: httpx.Client, agent_id: str) -> None:
    sets = benign()
    items = [t for name, texts in sets.items() if name != "LoCoMo" for t in texts][::2]
    items += sets.get("LoCoMo", [])[::40]
    items = [t for t in items if detect(t) is None]  # the rare refusal is counted above
    for start in range(0, len(items), 100):
        batch = [{"content": text} for text in items[start : start + 100]]
        answer = http.post(
            "/v1/memories/store/batch", json={"agent_id": agent_id, "memories": batch}
        )
        assert answer.status_code == 200, answer.text


def test_json_depth_over_http(http: httpx.Client, agent_id: str) -> None:
    def store(depth: int) -> httpx.Response:
        # top level (1) → metadata (2) → … : the whole body is ``depth`` levels deep
        body = {"agent_id": agent_id, "content": "deep", "metadata": nested(depth - 1)}
        return http.post("/v1/memory/store", json=body)

    assert store(32).status_code == 200
    _refusal(store(33), "deeper than 32")


def test_tag_limits(http: httpx.Client, agent_id: str) -> None:
    def store(tags: list[str]) -> httpx.Response:
        return http.post(
            "/v1/memory/store", json={"agent_id": agent_id, "content": "t", "tags": tags}
        )

    assert store([f"t{i}" for i in range(50)]).status_code == 200
    _refusal(store([f"t{i}" for i in range(51)]), "51 tags")
    assert store(["t" * 256]).status_code == 200
    _refusal(store(["t" * 257]), "tags[0]", "256")


@pytest.mark.parametrize(("length", "ok"), [(241, True), (242, False), (256, False), (257, False)])
def test_agent_id_length(http: httpx.Client, length: int, ok: bool) -> None:
    agent = "a" * length
    answer = http.post("/v1/memory/store", json={"agent_id": agent, "content": "x"})
    if ok:
        assert answer.status_code == 200, answer.text
    else:
        _refusal(answer, "agent_id", "241 bytes")
        _refusal(http.get(f"/v1/agents/{agent}/memories"), "agent_id (path)")


def test_namespace_and_key_name_limits(http: httpx.Client, agent_id: str) -> None:
    name = f"n{agent_id}"[:120].replace(".", "-")
    assert http.post(
        "/v1/namespaces", json={"name": name.ljust(128, "x"), "dimension": 3}
    ).status_code in (200, 201)
    _refusal(http.post("/v1/namespaces", json={"name": "n" * 129, "dimension": 3}), "128")
    created = http.post("/admin/keys", json={"name": "k" * 128, "scope": "read"})
    assert created.status_code == 201, created.text
    _refusal(http.post("/admin/keys", json={"name": "k" * 129, "scope": "read"}), "128")


def test_dollar_operators_only_inside_filters(http: httpx.Client, agent_id: str) -> None:
    ns = f"f{agent_id}"[:100].replace(".", "-")
    assert http.post("/v1/namespaces", json={"name": ns, "dimension": 2}).status_code in (200, 201)
    upsert = http.post(
        f"/v1/namespaces/{ns}/vectors",
        json={"vectors": [{"id": "v1", "values": [1, 0], "metadata": {"category": "a"}}]},
    )
    assert upsert.status_code == 200, upsert.text
    query = {"vector": [1, 0], "top_k": 5, "include_metadata": True}
    ok = http.post(
        f"/v1/namespaces/{ns}/query",
        json={**query, "filter": {"$and": [{"category": {"$in": ["a", "b"]}}]}},
    )
    assert ok.status_code == 200, ok.text
    assert [hit["id"] for hit in ok.json()["results"]] == ["v1"]
    _refusal(
        http.post(f"/v1/namespaces/{ns}/query", json={**query, "filter": {"$where": "1"}}),
        "nosql injection",
        "unknown filter operator",
    )
    outside = http.post(
        "/v1/memory/store",
        json={"agent_id": agent_id, "content": "x", "metadata": {"$gt": ""}},
    )
    _refusal(outside, "nosql injection", "metadata")


def test_query_and_path_parameters(http: httpx.Client, agent_id: str) -> None:
    _refusal(
        http.get(f"/v1/agents/{agent_id}/memories", params={"memory_type": "<script>x</script>"}),
        "xss",
        "memory_type (query)",
    )
    _refusal(http.get("/v1/sessions", params={"agent_id": "a;id;"}), "agent_id (query)")
    _refusal(http.get(f"/v1/agents/{agent_id}/memories?user[$ne]=1"), "nosql injection")
    _refusal(http.get("/v1/memory/get/%3Cscript%3E"), "memory_id (path)")
    _refusal(http.get("/v1/agents/a%27%20OR%20%271%27=%271/memories"), "agent_id (path)")


def test_url_fields_refuse_internal_targets_in_any_spelling(
    http: httpx.Client, agent_id: str
) -> None:
    ns = f"u{agent_id}"[:100].replace(".", "-")
    assert http.post("/v1/namespaces", json={"name": ns, "dimension": 2}).status_code in (200, 201)
    for target in ("http://2852039166/", "http://0xA9FEA9FE/", "http://[::ffff:a9fe:a9fe]/"):
        answer = http.patch(
            f"/v1/namespaces/{ns}/extractor", json={"provider": "gliner", "base_url": target}
        )
        _refusal(answer, "ssrf", "base_url", "metadata address")


def test_control_characters_in_used_headers_are_refused(server: RunningServer) -> None:
    parts = urlsplit(server.url)
    request = (
        "GET /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ROOT_KEY}\r\nUser-Agent: agent\x01bot\r\n\r\n"
    ).encode("latin-1")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400"
    if body.startswith(b"{"):  # our layer answered (the HTTP parser may refuse first)
        assert orjson.loads(body)["error"] == "header injection detected in header 'user-agent'"


def test_every_category_is_named_somewhere() -> None:
    assert len(CATEGORIES) == 7
    assert all(c and c == c.lower() for c in CATEGORIES)
    assert not set(string.ascii_letters) & METACHARACTERS
