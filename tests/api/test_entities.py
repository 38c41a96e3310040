"""Entity routes through the real server and SDK (dakera-api.md §3.12 entities, §4.6), with a
stand-in ODE/GLiNER sidecar served on loopback (someone else's server, so a fake is fine)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import FeatureNotAvailableError, ServerError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

LAUNCH = "OpenAI released GPT-4 in San Francisco on March 14, 2023"


class FakeSidecar:
    """``POST /ode/extract`` answering fixed entities (or an error), recording each request."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                sidecar.requests.append({"path": self.path, "body": body})
                text = body["content"]
                start = text.find("GPT-4")
                answer = {
                    "entities": [
                        {"text": "GPT-4", "label": "product", "start": start, "end": start + 5,
                         "score": 0.97},
                        {"text": "large language model", "label": "technology", "start": 0,
                         "end": 0, "score": 0.61},
                    ],
                    "model": "gliner-test",
                    "processing_time_ms": 3,
                }  # fmt: skip
                payload = json.dumps(answer).encode()
                self.send_response(sidecar.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    fake = FakeSidecar()
    yield fake
    fake.close()


def test_stored_memories_carry_their_entities(
    http: httpx.Client, client: Any, agent_id: str
) -> None:
    stored = client.store_memory(agent_id, LAUNCH)
    answer = client.memory_entities(stored["id"])
    assert answer.memory_id == stored["id"] and answer.count == len(answer.entities) == 4
    assert {(e.entity_type, e.value) for e in answer.entities} == {
        ("org", "OpenAI"),
        ("product", "GPT-4"),
        ("location", "San Francisco"),
        ("date", "March 14, 2023"),
    }
    raw = http.get(f"/v1/memory/entities/{stored['id']}").json()
    assert {e["extractor"] for e in raw["entities"]} == {"builtin-rules"}
    assert all(0 < e["score"] < 1 for e in raw["entities"])


def test_extract_entities_from_ad_hoc_text(http: httpx.Client, client: Any) -> None:
    answer = client.extract_entities("OpenAI released GPT-4 in San Francisco")
    assert {(e.entity_type, e.value) for e in answer.entities} == {
        ("org", "OpenAI"),
        ("product", "GPT-4"),
        ("location", "San Francisco"),
    }
    people = client.extract_entities(
        "Caroline and Dr. Gina Lopez met in Paris last Friday.", entity_types=["person"]
    )
    assert [e.value for e in people.entities] == ["Caroline", "Gina Lopez"]
    assert http.post("/v1/memories/extract", json={"content": ""}).status_code == 400
    assert http.post("/v1/memories/extract", json={"text": "wrong field"}).status_code == 400


def test_namespace_ner_config_round_trip(http: httpx.Client, client: Any, agent_id: str) -> None:
    namespace = f"_dakera_agent_{agent_id}"
    assert client.get_namespace_entity_config(namespace) == {
        "namespace": namespace,
        "extract_entities": True,
        "entity_types": [],
    }
    narrowed = client.configure_namespace_ner(namespace, True, ["person", "location"])
    assert narrowed["entity_types"] == ["person", "location"]
    kept = client.configure_namespace_ner(namespace, True)  # None keeps the types (merge)
    assert kept["entity_types"] == ["person", "location"]
    stored = client.store_memory(agent_id, LAUNCH)
    only = client.memory_entities(stored["id"])
    assert [(e.entity_type, e.value) for e in only.entities] == [("location", "San Francisco")]
    assert client.configure_namespace_ner(namespace, True, [])["entity_types"] == []
    off = client.replace_namespace_ner_config(namespace, False)
    assert off == {"namespace": namespace, "extract_entities": False, "entity_types": []}
    quiet = client.store_memory(agent_id, LAUNCH)
    assert client.memory_entities(quiet["id"]).count == 0
    strict = http.patch(
        f"/v1/namespaces/{namespace}/config", json={"extract_entities": True, "when": "now"}
    )
    assert strict.status_code == 422 and strict.json()["code"] == "UNPROCESSABLE_CONTENT"
    loose = http.patch(f"/v1/namespaces/{namespace}/config", json={"extract_entities": "yes"})
    assert loose.status_code == 400
    assert http.get("/v1/namespaces/bad name!/config").status_code in (400, 404)


def test_extractor_config_and_refusals(http: httpx.Client, client: Any) -> None:
    namespace = "team-notes"
    assert client.get_namespace_extractor(namespace) == {
        "namespace": namespace,
        "provider": "builtin-rules",
        "model": None,
        "base_url": None,
    }
    with pytest.raises(FeatureNotAvailableError) as disabled:
        client.configure_namespace_extractor(namespace, "gliner")
    assert disabled.value.is_feature_disabled
    with pytest.raises(FeatureNotAvailableError):
        client.configure_namespace_extractor(namespace, "openai", model="gpt-4o-mini")
    with pytest.raises(ValidationError):
        client.configure_namespace_extractor(namespace, "crystal-ball")
    for target in ("http://169.254.169.254/latest", "http://10.1.2.3:8080", "http://[::1]:80"):
        refused = http.patch(
            f"/v1/namespaces/{namespace}/extractor",
            json={"provider": "gliner", "base_url": target},
        )
        assert refused.status_code == 400, target
        assert refused.json()["code"] == "INVALID_REQUEST"  # the SSRF guard (or input layer)
    for target in ("ftp://example.com", "http://user:pw@example.com"):
        refused = http.patch(
            f"/v1/namespaces/{namespace}/extractor", json={"provider": "gliner", "base_url": target}
        )
        assert refused.status_code == 400, target
    rules = client.configure_namespace_extractor(namespace, "rules")
    assert rules["provider"] == "builtin-rules" and rules["updated"] is True


def test_extract_text_uses_the_builtin_provider_by_default(client: Any) -> None:
    result = client.extract_text("Dr. Gina Lopez visited Paris on 8 May, 2023.")
    assert result.provider == "builtin-rules" and result.model is None
    assert [(e["entity_type"], e["value"]) for e in result.entities] == [
        ("person", "Gina Lopez"),
        ("location", "Paris"),
        ("date", "8 May, 2023"),
    ]
    assert result.duration_ms >= 0


@pytest.fixture
def ode_server(
    tmp_path: Path, embedder: EmbeddingProvider, sidecar: FakeSidecar
) -> Iterator[RunningServer]:
    running = start_server(tmp_path, embedder, ode_url=sidecar.url, ode_allow_private=True)
    yield running
    running.stop()


def test_a_namespace_can_use_the_ode_sidecar(
    ode_server: RunningServer, sidecar: FakeSidecar
) -> None:
    with DakeraClient(ode_server.url, api_key=ROOT_KEY) as client:
        config = client.configure_namespace_extractor("_dakera_agent_ner", "gliner")
        assert config["provider"] == "gliner" and config["base_url"] is None
        stored = client.store_memory("ner", LAUNCH)
        entities = client.memory_entities(stored["id"]).entities
        assert [(e.entity_type, e.value, e.score) for e in entities] == [
            ("product", "GPT-4", 0.97),
            ("technology", "large language model", 0.61),
        ]
        sent = sidecar.requests[-1]
        assert sent["path"] == "/ode/extract"
        assert sent["body"] == {"content": LAUNCH, "agent_id": "ner", "memory_id": stored["id"]}
        result = client.extract_text(LAUNCH, provider="gliner")
        assert (result.provider, result.model) == ("gliner", "gliner-test")
        assert result.entities[0]["extractor"] == "gliner:gliner-test"
        inherited = client.extract_text(LAUNCH, namespace="_dakera_agent_ner")
        assert inherited.provider == "gliner"


def test_a_failing_sidecar_never_fails_a_store(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    broken = FakeSidecar(status=500)
    running = start_server(tmp_path, embedder, ode_url=broken.url, ode_allow_private=True)
    try:
        with DakeraClient(running.url, api_key=ROOT_KEY) as client, running.http() as http:
            client.configure_namespace_extractor("_dakera_agent_ner", "gliner")
            stored = client.store_memory("ner", LAUNCH)
            found = http.get(f"/v1/memory/entities/{stored['id']}").json()["entities"]
            extractors = {e["extractor"] for e in found}
            assert extractors == {"builtin-rules"}  # the built-in extractor stood in
            assert broken.requests, "the sidecar was asked first"
            with pytest.raises(ServerError) as unavailable:
                client.extract_text(LAUNCH, provider="gliner")
            assert unavailable.value.status_code == 503
    finally:
        running.stop()
        broken.close()


def test_a_loopback_sidecar_needs_the_operator_switch(
    tmp_path: Path, embedder: EmbeddingProvider, sidecar: FakeSidecar
) -> None:
    running = start_server(tmp_path, embedder, ode_url=sidecar.url)
    try:
        with running.http() as http:
            answer = http.post("/v1/extract", json={"text": LAUNCH, "provider": "gliner"})
            assert answer.status_code == 503
            assert "loopback or private" in answer.json()["error"]
            assert answer.headers["Retry-After"]
        assert sidecar.requests == [], "a refused target is never contacted"
    finally:
        running.stop()
