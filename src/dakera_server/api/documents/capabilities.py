"""The ``records``, ``attachments``, ``vision`` and ``documents`` blocks of ``/v1/capabilities``:
what this server really has switched on, with its limits."""

from __future__ import annotations

from typing import Any

from dakera_server.engine.core import Engine
from dakera_server.engine.documents.extract import FILE_MEDIA_TYPES, TEXT_MEDIA_TYPES

__all__ = ["file_capabilities"]


def file_capabilities(engine: Engine) -> dict[str, Any]:
    """The four opt-in lanes as ``GET /v1/capabilities`` shows them."""
    settings = engine.settings
    transcribe = engine.media.lanes["transcribe"]
    vision = engine.media.lanes["index"]
    documents = engine.documents
    return {
        "records": engine.records.capabilities(),
        "attachments": {
            "enabled": engine.attachments.enabled,
            "max_bytes": engine.attachments.max_bytes,
            "transcription": {
                "enabled": transcribe.client is not None,
                "model": transcribe.model if transcribe.client is not None else "",
                "models": [transcribe.model] if transcribe.client is not None else [],
                "media_types": ["audio/wav"],
                "languages": [],
                "sample_rate_hz": 0,
            },
        },
        "vision": {
            "enabled": engine.attachments.enabled and vision.client is not None,
            "model": vision.model if vision.client is not None else "",
            "models": [vision.model] if vision.client is not None else [],
            "media_types": ["image/png"],
            "dimension": engine.embedder.dimension,
        },
        "documents": {
            "enabled": documents.enabled,
            "text_media_types": list(TEXT_MEDIA_TYPES),
            "media_types": list(FILE_MEDIA_TYPES) if engine.attachments.enabled else [],
            "max_bytes": settings.max_body_size,
            "max_text_bytes": documents.limits.max_text_bytes,
            "max_chunks": documents.limits.max_chunks,
            "default_chunk_tokens": documents.defaults.max_tokens,
            "default_overlap_tokens": documents.defaults.overlap_tokens,
            "strategies": ["structure", "fixed"],
        },
    }
