"""Wire models of the lifecycle routes (dakera-api.md §3.7, §3.13, §4.1-4.4).

The admin configuration bodies are strict (an unknown field is a 422, §1.14): a typo in a
setting must not be silently ignored. The others tolerate extra fields. Types are checked
here; ranges and meaning in the engine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AutoPilotConfigRequest",
    "ConsolidateRequest",
    "ConsolidationConfigRequest",
    "DecayConfigRequest",
    "DeduplicateRequest",
    "FeedbackRequest",
    "MemoryFeedbackRequest",
    "PatchImportanceRequest",
    "TriggerRequest",
    "TtlCleanupRequest",
]


class Strict(BaseModel):
    """Refuses unknown fields (422)."""

    model_config = ConfigDict(extra="forbid")


class Tolerant(BaseModel):
    """Ignores unknown fields."""

    model_config = ConfigDict(extra="ignore")


class DecayConfigRequest(Strict):
    strategy: str | None = None
    half_life_hours: float | None = None
    min_importance: float | None = None
    type_half_life_hours: dict[str, float] | None = None


class AutoPilotConfigRequest(Strict):
    enabled: bool | None = None
    dedup_threshold: float | None = None
    dedup_interval_hours: int | None = None
    consolidation_interval_hours: int | None = None
    dedup_mode: str | None = None
    dedup_cross_session: bool | None = None
    consolidate_cross_session: bool | None = None
    trash_retention_hours: int | None = None


class TriggerRequest(Strict):
    action: str


class TtlCleanupRequest(Tolerant):
    namespace: str | None = None


class FeedbackRequest(Tolerant):
    agent_id: str
    memory_id: str
    signal: Any = None
    # Older SDKs sent the signal as ``feedback`` (dakera-api.md §14.3).
    feedback: Any = None


class MemoryFeedbackRequest(Tolerant):
    agent_id: str
    signal: Any = None


class PatchImportanceRequest(Tolerant):
    agent_id: str
    importance: Any = None


class ConsolidateRequest(Tolerant):
    agent_id: str
    memory_ids: list[str] | None = None
    threshold: float | None = None
    target_type: str | None = None


class DeduplicateRequest(Tolerant):
    agent_id: str
    dry_run: bool = False
    threshold: float | None = None
    memory_type: str | None = None


class ConsolidationConfigRequest(Tolerant):
    enabled: bool | None = None
    epsilon: float | None = None
    min_samples: int | None = None
    soft_deprecation_days: int | None = None
