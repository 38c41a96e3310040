"""Client of an OpenAI-compatible media endpoint (Whisper-style transcription, vision chat).

The base URL comes from the operator's settings, and is still checked before every call the
way the entity sidecar's is (``entities/sidecar.check_target``): http(s) only, no credentials
in it, every address it resolves to public unless ``DAKERA_MEDIA_ALLOW_PRIVATE`` is set, never
link-local or metadata addresses; plain http goes to the address that was checked, redirects
are not followed, answers are size-capped. Every failure is ``Unavailable`` (503): the job
reports it and the client may retry.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson

from dakera_server.engine.entities.sidecar import check_target, pinned_url
from dakera_server.errors import InvalidInput, Unavailable

__all__ = ["CAPTION_PROMPT", "MediaClient"]

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
CAPTION_PROMPT = (
    "Describe this image for a search index: what it shows, any text in it, and its key "
    "details, in a few plain sentences."
)


class MediaClient:
    """Calls one OpenAI-compatible endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        allow_private: bool,
        setting: str,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.allow_private = allow_private
        self.setting = setting
        self.timeout = timeout

    def _url(self, path: str) -> tuple[str, dict[str, str]]:
        try:
            base, addresses = check_target(
                self.base_url,
                allow_private=self.allow_private,
                what=f"{self.setting}",
                private_switch="DAKERA_MEDIA_ALLOW_PRIVATE",
            )
        except InvalidInput as exc:
            raise Unavailable(f"the media endpoint is not reachable: {exc.message}") from exc
        root = base if base.endswith("/v1") else base + "/v1"
        url, headers = pinned_url(root + path, addresses)
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return url, headers

    def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        url, headers = self._url(path)
        try:
            with (
                httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as http,
                http.stream("POST", url, headers=headers, **kwargs) as response,
            ):
                if response.status_code != 200:
                    raise Unavailable(f"the media endpoint answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > MAX_RESPONSE_BYTES:
                        raise Unavailable("the media endpoint's answer is too large")
        except httpx.HTTPError as exc:
            raise Unavailable("the media endpoint did not answer") from exc
        try:
            parsed = orjson.loads(bytes(data))
        except orjson.JSONDecodeError as exc:
            raise Unavailable("the media endpoint answered malformed JSON") from exc
        if not isinstance(parsed, dict):
            raise Unavailable("the media endpoint answered an unexpected shape")
        return parsed

    def transcribe(self, audio: bytes, *, model: str, language: str | None) -> str:
        """The transcript of a WAV file (``POST /v1/audio/transcriptions``, multipart)."""
        form: dict[str, str] = {"model": model, "response_format": "json"}
        if language:
            form["language"] = language
        answer = self._post(
            "/audio/transcriptions",
            files={"file": ("audio.wav", audio, "audio/wav")},
            data=form,
        )
        text = answer.get("text")
        if not isinstance(text, str):
            raise Unavailable("the transcription endpoint's answer has no 'text'")
        return text.strip()

    def caption(self, image: bytes, *, model: str) -> str:
        """A description of a PNG image (``POST /v1/chat/completions`` with an image part)."""
        data_url = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        body = {
            "model": model,
            "max_tokens": 300,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": CAPTION_PROMPT},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
        }
        answer = self._post("/chat/completions", json=body)
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise Unavailable("the vision endpoint's answer has no message content") from None
        if not isinstance(text, str):
            raise Unavailable("the vision endpoint's answer has no message content")
        return text.strip()
