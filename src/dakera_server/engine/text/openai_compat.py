"""An embedding provider backed by an OpenAI-compatible ``POST {base_url}/v1/embeddings``.

For users who want a bigger model (bge-large, e5, nomic...) served by Ollama, vLLM, TEI or
OpenAI itself. Requests go out in chunks of ``batch_size`` texts (TEI refuses more than 32 per
request by default) over one pooled, thread-safe ``httpx.Client``.

Failures are translated once, here, at the boundary (STYLE habit 8):

    timeout, connection error, HTTP 5xx/429/401/403/404, malformed or
    wrong-dimension answer                               -> Unavailable  (503, retry later)
    HTTP 400/413/422 (the server refused this content)   -> InvalidInput (400)

Upstream auth failures are deliberately *not* a 401: the caller's key is fine, our
configuration is not. Messages name the status but never the URL or the key, since they may
reach a client; the original exception stays chained (``from exc``) for the server log.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from dakera_server.engine.text.embedding import EmbeddingBatch
from dakera_server.errors import ConfigError, DakeraError, InvalidInput, Unavailable

__all__ = ["OpenAIEmbeddingProvider"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_BATCH_SIZE = 32
_REFUSED_CONTENT = frozenset({400, 413, 422})


@contextmanager
def _map_http_errors() -> Iterator[None]:
    """Turn httpx transport failures into ``Unavailable``; let anything else through."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Unavailable("the embedding service timed out", retry_after=5) from exc
    except httpx.TransportError as exc:
        raise Unavailable("the embedding service is unreachable", retry_after=5) from exc


class OpenAIEmbeddingProvider:
    """Embeds through a remote OpenAI-compatible endpoint; vectors are re-normalised here.

    ``dimension`` is the model's output size: pass it to check every answer against it, or
    leave it ``None`` to ask the server once at construction (a failure then is a
    ``ConfigError``, so a wrong URL or model stops start-up). Vectors come back in input order
    (sorted by the response's ``index``), L2-normalised whatever the server sends. The remote
    tokeniser is invisible, so token counts are reported as 0 and ``max_tokens`` is 0
    ("decided by the server"). Thread-safe; call :meth:`close` at shutdown.
    """

    max_tokens: int = 0

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dimension: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if dimension is not None and dimension <= 0:
            raise ConfigError(f"embedding dimension must be positive, got {dimension}")
        if batch_size <= 0:
            raise ConfigError(f"embedding batch size must be positive, got {batch_size}")
        root = base_url.rstrip("/")
        # Accept both "http://host:11434" and "http://host:11434/v1", as users paste either.
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.model_name = model
        self._batch_size = batch_size
        self._url = f"{root}/v1/embeddings"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
        )
        if dimension is None:
            try:
                dimension = int(self._request(["dimension probe"], expected=None).shape[1])
            except DakeraError as exc:
                self._client.close()
                raise ConfigError(
                    f"could not ask the embedding server at {self._url} for the dimension of "
                    f"model {model!r}: {exc.message}; start it first, fix the URL or model, "
                    "or set the dimension explicitly"
                ) from exc
        self.dimension: int = dimension

    def close(self) -> None:
        """Close the connection pool; the provider is unusable afterwards."""
        self._client.close()

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts`` in order; one request per ``batch_size`` texts, all or nothing."""
        n = len(texts)
        vectors = np.empty((n, self.dimension), dtype=np.float32)
        for start in range(0, n, self._batch_size):
            chunk = list(texts[start : start + self._batch_size])
            vectors[start : start + len(chunk)] = self._request(chunk, expected=self.dimension)
        return EmbeddingBatch(vectors=vectors, content_tokens=[0] * n, embedded_tokens=[0] * n)

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """Embed one text; a 1-D unit vector of length ``dimension``."""
        vector: npt.NDArray[np.float32] = self.embed([text]).vectors[0]
        return vector

    def _request(self, texts: list[str], *, expected: int | None) -> npt.NDArray[np.float32]:
        with _map_http_errors():
            response = self._client.post(self._url, json={"model": self.model_name, "input": texts})
        status = response.status_code
        if status in _REFUSED_CONTENT:
            # The upstream's own error text is not passed on: it is not ours to vouch for.
            raise InvalidInput(f"the embedding service refused the text (HTTP {status})")
        if status == 429 or status >= 500:
            raise Unavailable(
                f"the embedding service is busy or failing (HTTP {status})",
                retry_after=_retry_after(response),
            )
        if status != 200:
            raise Unavailable(f"the embedding service answered HTTP {status}", retry_after=30)
        try:
            payload = response.json()
        except ValueError as exc:
            raise Unavailable("the embedding service answered with invalid JSON") from exc
        return _parse_vectors(payload, len(texts), expected)


def _parse_vectors(payload: Any, n: int, expected: int | None) -> npt.NDArray[np.float32]:
    """Check the ``data`` array and return unit rows in input order (by ``index``)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != n:
        got = len(data) if isinstance(data, list) else "no"
        raise Unavailable(f"the embedding service returned {got} embeddings for {n} texts")
    try:
        ordered = sorted(data, key=lambda item: int(item["index"]))
        if [int(item["index"]) for item in ordered] != list(range(n)):
            raise ValueError("indices are not 0..n-1")
        matrix = np.array([item["embedding"] for item in ordered], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise Unavailable("the embedding service returned malformed embeddings") from exc
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise Unavailable("the embedding service returned embeddings of uneven or zero length")
    if expected is not None and matrix.shape[1] != expected:
        raise Unavailable(
            f"the embedding service returned {matrix.shape[1]}-dimensional vectors, expected "
            f"{expected}: the configured model or dimension is wrong"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise Unavailable("the embedding service returned a zero or non-finite vector")
    matrix /= norms
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return 5
    return max(1, min(300, math.ceil(seconds))) if math.isfinite(seconds) else 5
