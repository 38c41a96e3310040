"""Transcription and image indexing through an OpenAI-compatible endpoint the operator
configures: a tiny local stub stands in for it (as in tests/engine/text/test_embeddings.py)
and proves the wiring end to end through the SDK; without one the routes answer 501 naming
the variable; the SSRF guard keeps a loopback endpoint out unless the operator allows it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dakera import DakeraClient
from dakera.exceptions import FeatureNotAvailableError, NotFoundError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.files import make_png, make_wav

TRANSCRIPT = "Remember to order oat milk and descale the machine on Friday."
CAPTION = "A red espresso machine with a steam wand on a wooden counter."


class _Stub(BaseHTTPRequestHandler):
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        raw = self.rfile.read(length)
        record: dict[str, Any] = {"path": self.path, "auth": self.headers.get("Authorization")}
        if self.path == "/v1/audio/transcriptions":
            form = _multipart(self.headers["Content-Type"], raw)
            record.update(model=form["model"], file=form["file"])
            self._send({"text": TRANSCRIPT})
        elif self.path == "/v1/chat/completions":
            body = json.loads(raw)
            record.update(model=body["model"], image=body["messages"][0]["content"][1])
            self._send({"choices": [{"message": {"role": "assistant", "content": CAPTION}}]})
        else:
            self.send_response(404)
            self.end_headers()
        self.server.requests.append(record)

    def _send(self, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _StubServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body (the stdlib email parser reads MIME)."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = payload if part.get_filename() else payload.decode()
    return fields


@pytest.fixture(scope="module")
def stub() -> Iterator[_StubServer]:
    server = _StubServer(("127.0.0.1", 0), _Stub)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def media_server(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider, stub: _StubServer
) -> Iterator[RunningServer]:
    host, port = stub.server_address[:2]
    url = f"http://{host!s}:{port}"
    running = start_server(
        tmp_path_factory.mktemp("media"),
        embedder,
        attachments_enabled=True,
        transcription_url=url,
        transcription_model="whisper-large-v3",
        transcription_api_key="stub-token",
        vision_url=url + "/v1",
        vision_model="llava",
        media_allow_private=True,
    )
    yield running
    running.stop()


@pytest.fixture
def sdk(media_server: RunningServer) -> Iterator[DakeraClient]:
    client = DakeraClient(media_server.url, api_key=ROOT_KEY)
    yield client
    client.close()


def test_transcription_stores_the_transcript_as_a_memory(
    sdk: DakeraClient, stub: _StubServer, agent_id: str
) -> None:
    space = "recordings"
    audio = make_wav()
    ref = sdk.upload_attachment(space, audio, content_type="audio/wav").attachment_ref
    accepted = sdk.transcribe_attachment(space, ref, agent_id, tags=["voice-note"])
    assert accepted.model == "whisper-large-v3" and accepted.memory_id
    job = sdk.wait_for_transcription(space, ref, accepted.job_id, timeout=60, poll_interval=0.1)
    assert job.succeeded, job.raw
    sent = [r for r in stub.requests if r["path"] == "/v1/audio/transcriptions"][-1]
    assert sent["file"] == audio and sent["model"] == "whisper-large-v3"
    assert sent["auth"] == "Bearer stub-token"
    memory = sdk.get_memory(agent_id, accepted.memory_id)
    assert memory["content"] == TRANSCRIPT and memory["attachment_ref"] == ref
    assert "voice-note" in memory["tags"]
    assert memory["metadata"]["_dakera_attachment"]["namespace"] == space
    found = sdk.recall(agent_id, "what milk should I buy?", top_k=1).memories[0]
    assert found.content == TRANSCRIPT


def test_image_indexing_stores_the_caption(
    sdk: DakeraClient, stub: _StubServer, agent_id: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    image = make_png()
    ref = sdk.upload_attachment(space, image, content_type="image/png").attachment_ref
    accepted = sdk.index_attachment(space, ref, agent_id, content="Kitchen photo")
    job = sdk.wait_for_index(space, ref, accepted.job_id, timeout=60, poll_interval=0.1)
    assert job.succeeded, job.raw
    sent = [r for r in stub.requests if r["path"] == "/v1/chat/completions"][-1]
    assert sent["model"] == "llava"
    assert sent["image"]["image_url"]["url"].startswith("data:image/png;base64,")
    memory = sdk.get_memory(agent_id, accepted.memory_id)
    assert memory["content"] == f"Kitchen photo\n\n{CAPTION}"
    # The memory references the image: the image stays while the memory does.
    assert sdk.list_attachments(space)[0].attachment_ref == ref


def test_only_wav_is_transcribed_and_only_png_indexed(sdk: DakeraClient, agent_id: str) -> None:
    space = "recordings"
    png = sdk.upload_attachment(space, make_png(), content_type="image/png").attachment_ref
    wav = sdk.upload_attachment(space, make_wav(0.1), content_type="audio/wav").attachment_ref
    with pytest.raises(ValidationError):
        sdk.transcribe_attachment(space, png, agent_id)
    with pytest.raises(ValidationError):
        sdk.index_attachment(space, wav, agent_id)
    with pytest.raises(NotFoundError):
        sdk.transcribe_attachment(space, "sha256:" + "1" * 64, agent_id)


def test_job_status_is_per_attachment(sdk: DakeraClient, agent_id: str) -> None:
    space = "recordings"
    ref = sdk.upload_attachment(space, make_wav(0.3), content_type="audio/wav").attachment_ref
    accepted = sdk.transcribe_attachment(space, ref, agent_id)
    sdk.wait_for_transcription(space, ref, accepted.job_id, timeout=60, poll_interval=0.1)
    with pytest.raises(NotFoundError) as other:
        sdk.get_index_job(space, ref, accepted.job_id)
    assert other.value.resource == "job"
    with pytest.raises(NotFoundError):
        sdk.get_transcription_job("elsewhere", ref, accepted.job_id)


def test_without_an_endpoint_the_routes_name_the_variable(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> None:
    running = start_server(tmp_path_factory.mktemp("nomedia"), embedder, attachments_enabled=True)
    sdk = DakeraClient(running.url, api_key=ROOT_KEY)
    try:
        ref = sdk.upload_attachment("r", make_wav(), content_type="audio/wav").attachment_ref
        with pytest.raises(FeatureNotAvailableError) as off:
            sdk.transcribe_attachment("r", ref, "agent-x")
        assert "DAKERA_TRANSCRIPTION_URL" in str(off.value)
        with pytest.raises(FeatureNotAvailableError) as vision:
            sdk.index_attachment("r", ref, "agent-x")
        assert "DAKERA_VISION_URL" in str(vision.value)
        capabilities = sdk.capabilities(refresh=True)
        assert capabilities.vision.enabled is False
        assert capabilities.attachments.transcription.model == ""
    finally:
        sdk.close()
        running.stop()


def test_a_loopback_endpoint_needs_the_operator_s_permission(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider, stub: _StubServer
) -> None:
    host, port = stub.server_address[:2]
    running = start_server(
        tmp_path_factory.mktemp("ssrf"),
        embedder,
        attachments_enabled=True,
        transcription_url=f"http://{host!s}:{port}",
    )
    sdk = DakeraClient(running.url, api_key=ROOT_KEY)
    try:
        calls = len(stub.requests)
        ref = sdk.upload_attachment("r", make_wav(), content_type="audio/wav").attachment_ref
        accepted = sdk.transcribe_attachment("r", ref, "agent-x")
        job = sdk.wait_for_transcription("r", ref, accepted.job_id, timeout=60, poll_interval=0.1)
        assert job.status == "Failed" and job.error_code == "SERVICE_UNAVAILABLE"
        assert "DAKERA_MEDIA_ALLOW_PRIVATE" in str(job.raw["error"])
        assert len(stub.requests) == calls  # refused before any connection
    finally:
        sdk.close()
        running.stop()
