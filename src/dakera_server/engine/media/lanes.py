"""The media engine as the settings configure it (an endpoint per lane, or none)."""

from __future__ import annotations

from collections.abc import Callable

from dakera_server.config import Settings
from dakera_server.engine.attachments.service import AttachmentStore
from dakera_server.engine.media.client import MediaClient
from dakera_server.engine.media.service import Lane, MediaEngine
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.tasks.runner import TaskRunner

__all__ = ["media_engine"]


def _client(
    url: str | None, api_key: str | None, settings: Settings, setting: str
) -> MediaClient | None:
    if url is None:
        return None
    return MediaClient(
        url, api_key=api_key, allow_private=settings.media_allow_private, setting=setting
    )


def media_engine(
    settings: Settings,
    attachments: AttachmentStore,
    memories: MemoryEngine,
    tasks: TaskRunner,
    clock: Callable[[], float],
) -> MediaEngine:
    """Transcription and vision lanes from ``DAKERA_TRANSCRIPTION_*`` / ``DAKERA_VISION_*``."""
    transcription = Lane(
        "transcribe",
        "transcription",
        "audio/wav",
        "WAV (audio/wav)",
        _client(
            settings.transcription_url,
            settings.transcription_api_key,
            settings,
            "DAKERA_TRANSCRIPTION_URL",
        ),
        settings.transcription_model,
        "DAKERA_TRANSCRIPTION_URL",
    )
    vision = Lane(
        "index",
        "image_index",
        "image/png",
        "PNG (image/png)",
        _client(settings.vision_url, settings.vision_api_key, settings, "DAKERA_VISION_URL"),
        settings.vision_model,
        "DAKERA_VISION_URL",
    )
    return MediaEngine(
        attachments, memories, tasks, transcription=transcription, vision=vision, clock=clock
    )
