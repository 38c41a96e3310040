"""``create_provider``: picks and builds the embedding provider the configuration names.

Separate from the interface (``embedding.py``) so that the implementations import the interface
and only this factory imports the implementations: no import circle. Importing ``minilm`` is
cheap; its 90 MB of weights load only when ``MiniLMProvider.shared()`` runs, so a server using a
remote provider never loads them.
"""

from __future__ import annotations

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.engine.text.minilm import MODEL_NAME, MiniLMProvider
from dakera_server.engine.text.openai_compat import OpenAIEmbeddingProvider
from dakera_server.errors import ConfigError

__all__ = ["PROVIDER_KINDS", "create_provider"]

PROVIDER_KINDS = ("builtin", "openai")


def create_provider(
    kind: str = "builtin",
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    dimension: int | None = None,
) -> EmbeddingProvider:
    """Build the provider ``kind`` names, refusing contradictory options with a ``ConfigError``.

    ``builtin`` takes no URL or key; ``model``/``dimension`` may only restate what it is
    (all-MiniLM-L6-v2, 384). ``openai`` needs ``base_url`` and ``model``; without ``dimension``
    it asks the endpoint once, now, so a wrong URL stops start-up instead of the first write.
    """
    if kind == "builtin":
        if base_url is not None or api_key is not None:
            raise ConfigError(
                "the builtin embedding provider takes no base URL or API key; "
                "choose the 'openai' provider to use a remote embedding server"
            )
        if model is not None and model != MODEL_NAME:
            raise ConfigError(
                f"the builtin embedding provider runs {MODEL_NAME}, not {model!r}; "
                "leave the model unset, or choose the 'openai' provider to serve other models"
            )
        provider = MiniLMProvider.shared()
        if dimension is not None and dimension != provider.dimension:
            raise ConfigError(
                f"the builtin embedding model {MODEL_NAME} has dimension {provider.dimension}, "
                f"not {dimension}; leave the dimension unset"
            )
        return provider
    if kind == "openai":
        if not base_url:
            raise ConfigError(
                "the 'openai' embedding provider needs a base URL, e.g. http://localhost:11434"
            )
        if not model:
            raise ConfigError(
                "the 'openai' embedding provider needs a model name, e.g. bge-large-en-v1.5"
            )
        return OpenAIEmbeddingProvider(
            base_url=base_url, model=model, api_key=api_key, dimension=dimension
        )
    raise ConfigError(
        f"unknown embedding provider {kind!r}; choose one of: {', '.join(PROVIDER_KINDS)}"
    )
