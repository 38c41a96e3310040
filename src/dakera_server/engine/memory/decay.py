"""The decay curve: how a memory's importance fades with time since it was last used.

Recall ranking calls ``decayed_importance`` at query time, so ranking is right whether or not a
decay cycle has run; the cycle itself (``lifecycle/decay.py``) persists the decayed value and
records in ``metadata._dakera_decay`` where the curve started, which ``curve_origin`` reads back.
The model (curves, half-life stretched by use, flagged memories decaying faster) is described
in ``lifecycle/decay.py``. Here rather than there so memories and recall do not import the
lifecycle, which is built on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dakera_server.engine.memory.models import Memory
from dakera_server.errors import InvalidInput

__all__ = [
    "DECAY_KEY",
    "DEFAULT_DECAY_POLICY",
    "FLAG_KEY",
    "STRATEGIES",
    "DecayPolicy",
    "curve",
    "curve_origin",
    "decayed_importance",
]

STRATEGIES = ("exponential", "linear", "step", "power_law", "logarithmic", "flat")
DECAY_KEY = "_dakera_decay"
FLAG_KEY = "_dakera_decay_flag"
FLAG_HALF_LIFE_FACTOR = 0.25
ACCESS_REINFORCEMENT = 0.5


@dataclass(frozen=True)
class DecayPolicy:
    """The curve and half-life that apply to one memory."""

    strategy: str = "exponential"
    half_life_hours: float = 168.0


DEFAULT_DECAY_POLICY = DecayPolicy()


def curve(strategy: str, x: float) -> float:
    """Remaining fraction after ``x`` half-lives (``x ≥ 0``); 0.5 at ``x = 1`` except ``flat``."""
    if strategy == "flat" or x <= 0.0:
        return 1.0
    if strategy == "exponential":
        return math.pow(0.5, x)
    if strategy == "linear":
        return max(0.0, 1.0 - x / 2.0)
    if strategy == "step":
        return math.pow(0.5, math.floor(x))
    if strategy == "power_law":
        return 1.0 / (1.0 + x)
    if strategy == "logarithmic":
        return 1.0 / (1.0 + math.log2(1.0 + x))
    raise InvalidInput(f"unknown decay strategy '{strategy}'")


def curve_origin(memory: Memory) -> tuple[float, int]:
    """Where the memory's current curve started: ``(base importance, since)``."""
    anchor = max(memory.created_at, memory.last_accessed_at, memory.updated_at)
    state = (memory.metadata or {}).get(DECAY_KEY)
    if isinstance(state, dict):
        base, since, at = state.get("base"), state.get("since"), state.get("at")
        if (
            isinstance(base, int | float)
            and isinstance(since, int)
            and isinstance(at, int)
            and state.get("value") == memory.importance
            and memory.last_accessed_at <= since
            and memory.updated_at <= at
        ):
            return float(base), since
    return memory.importance, anchor


def _effective_half_life(memory: Memory, policy: DecayPolicy) -> float:
    hours = policy.half_life_hours * (1.0 + ACCESS_REINFORCEMENT * math.log1p(memory.access_count))
    if memory.metadata and memory.metadata.get(FLAG_KEY) is True:
        hours *= FLAG_HALF_LIFE_FACTOR
    return hours


def decayed_importance(memory: Memory, now: float, policy: DecayPolicy) -> float:
    """The memory's importance at ``now`` under ``policy`` (what ranking uses)."""
    base, since = curve_origin(memory)
    age_hours = max(0.0, now - since) / 3600.0
    return base * curve(policy.strategy, age_hours / _effective_half_life(memory, policy))
