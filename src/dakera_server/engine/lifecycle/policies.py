"""Per-namespace memory lifecycle policies (dakera-api.md §4.5), stored durably.

The whole policy object is kept, with the SDK's defaults for every key a client leaves out
(``PUT`` replaces the policy). The rate-limit keys are enforced by the rate-limit layer through
``rate_limits``; decay, TTL and consolidation read their keys through ``policy_for``.
Policies live in the store's ``meta`` table under ``memory_policy:<namespace>``, are all held in
memory (they are few and read on every rate-limited request), and every change emits a
``policy_changed`` event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import orjson

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.rules import check_agent_id, check_namespace_name
from dakera_server.errors import InvalidInput, NamespaceNotFound
from dakera_server.storage.base import Op, Store

__all__ = ["DECAY_CURVES", "MemoryPolicy", "PolicyStore", "RateLimitPolicy"]

META_PREFIX = "memory_policy:"
DECAY_CURVES = ("exponential", "linear", "step", "power_law", "logarithmic", "flat")
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600
MAX_PER_MINUTE = 10_000_000


@dataclass(frozen=True)
class RateLimitPolicy:
    """A namespace's enforced limits: operations per minute, ``None`` = unlimited."""

    stores_per_minute: int | None
    recalls_per_minute: int | None


@dataclass(frozen=True)
class MemoryPolicy:
    """The §4.5 policy; field names and defaults are the SDK's ``MemoryPolicy``."""

    working_ttl_seconds: int | None = 14_400
    episodic_ttl_seconds: int | None = 2_592_000
    semantic_ttl_seconds: int | None = 31_536_000
    procedural_ttl_seconds: int | None = 63_072_000
    working_decay: str = "exponential"
    episodic_decay: str = "power_law"
    semantic_decay: str = "logarithmic"
    procedural_decay: str = "flat"
    spaced_repetition_factor: float = 1.0
    spaced_repetition_base_interval_seconds: int = 86_400
    consolidation_enabled: bool = False
    consolidation_threshold: float = 0.92
    consolidation_interval_hours: int = 24
    consolidated_count: int = 0
    rate_limit_enabled: bool = False
    rate_limit_stores_per_minute: int | None = None
    rate_limit_recalls_per_minute: int | None = None
    dedup_on_store: bool = False
    dedup_threshold: float = 0.92

    def to_wire(self) -> dict[str, Any]:
        """Every key, ``null`` where unset."""
        return asdict(self)

    @property
    def rate_limits(self) -> RateLimitPolicy | None:
        """The limits to enforce, or ``None`` when this namespace is not rate limited."""
        if not self.rate_limit_enabled:
            return None
        if self.rate_limit_stores_per_minute is None and self.rate_limit_recalls_per_minute is None:
            return None
        return RateLimitPolicy(
            self.rate_limit_stores_per_minute, self.rate_limit_recalls_per_minute
        )

    @classmethod
    def parse(cls, body: Any, *, consolidated_count: int = 0) -> MemoryPolicy:
        """A policy from a client body: absent keys take defaults, unknown keys are ignored."""
        if not isinstance(body, dict):
            raise InvalidInput("the policy must be a JSON object")
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name == "consolidated_count" or spec.name not in body:
                continue
            values[spec.name] = _check(spec.name, body[spec.name])
        return cls(**values, consolidated_count=consolidated_count)


def _whole(name: str, value: Any, low: int, high: int, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        kind = "null or " if nullable else ""
        raise InvalidInput(f"'{name}' must be {kind}a whole number between {low} and {high}")
    return value


def _fraction(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"'{name}' must be a number between {low} and {high}")
    return float(value)


def _check(name: str, value: Any) -> Any:
    """Validate one policy key (400 naming it)."""
    if name.endswith("_ttl_seconds"):
        return _whole(name, value, 0, MAX_TTL_SECONDS, True)
    if name.endswith("_decay"):
        if value not in DECAY_CURVES:
            raise InvalidInput(f"'{name}' must be one of {', '.join(DECAY_CURVES)}")
        return value
    if name in ("consolidation_enabled", "rate_limit_enabled", "dedup_on_store"):
        if not isinstance(value, bool):
            raise InvalidInput(f"'{name}' must be true or false")
        return value
    if name in ("consolidation_threshold", "dedup_threshold"):
        return _fraction(name, value, 0.0, 1.0)
    if name == "spaced_repetition_factor":
        return _fraction(name, value, 0.0, 100.0)
    if name == "spaced_repetition_base_interval_seconds":
        return _whole(name, value, 1, MAX_TTL_SECONDS, False)
    if name == "consolidation_interval_hours":
        return _whole(name, value, 1, 24 * 365, False)
    if name in ("rate_limit_stores_per_minute", "rate_limit_recalls_per_minute"):
        return _whole(name, value, 1, MAX_PER_MINUTE, True)
    raise InvalidInput(f"unknown policy key '{name}'")  # unreachable: keys come from fields()


def check_policy_namespace(namespace: Any) -> str:
    """A data namespace name or an agent namespace ``_dakera_agent_<agent_id>``."""
    if isinstance(namespace, str) and namespace.startswith(AGENT_NAMESPACE_PREFIX):
        check_agent_id(namespace[len(AGENT_NAMESPACE_PREFIX) :], "namespace")
        return namespace
    return check_namespace_name(namespace)


def _nothing() -> None:
    """Default ``follow``: a store of one process has nothing to catch up with."""


class PolicyStore:
    """Every namespace's policy, loaded at construction and persisted on each change."""

    def __init__(self, store: Store, events: EventBus) -> None:
        self.store = store
        self.events = events
        self._lock = threading.Lock()
        self._policies: dict[str, MemoryPolicy] = {}
        self._limits: dict[str, RateLimitPolicy] = {}
        # Set by the follower on a store shared by several nodes: catch up with policy
        # changes other nodes committed before ``get`` (not on ``policy_for``: ranking calls it
        # per memory; not on ``rate_limits``: it runs on the event loop).
        self.follow: Callable[[], None] = _nothing
        self.reload()

    def reload(self) -> int:
        """(Re-)read every policy from the store (construction, and after a restore)."""
        policies = {}
        for row in self.store.iter_rows("meta"):
            if row.key.startswith(META_PREFIX):
                policies[row.key[len(META_PREFIX) :]] = MemoryPolicy(**orjson.loads(row.payload))
        with self._lock:
            self._policies = {}
            self._limits = {}
            for namespace, policy in policies.items():
                self._set(namespace, policy)
        return len(policies)

    def _set(self, namespace: str, policy: MemoryPolicy) -> None:
        self._policies[namespace] = policy
        limits = policy.rate_limits
        if limits is None:
            self._limits.pop(namespace, None)
        else:
            self._limits[namespace] = limits

    def reload_rows(self, keys: list[str]) -> None:
        """Read these meta rows again (another node changed them); policy rows only."""
        for key in keys:
            if not key.startswith(META_PREFIX):
                continue
            row = self.store.get_row("meta", key)
            with self._lock:
                name = key[len(META_PREFIX) :]
                if row is None:
                    self._policies.pop(name, None)
                    self._limits.pop(name, None)
                else:
                    self._set(name, MemoryPolicy(**orjson.loads(row.payload)))

    def visible_namespace(self, caller: Caller, namespace: str) -> str:
        """A valid namespace name the caller may see; else 400 or 404 (hidden = unknown)."""
        name = check_policy_namespace(namespace)
        if not caller.can_see(name):
            raise NamespaceNotFound(f"namespace '{name}' not found", resource="namespace")
        return name

    def policy_for(self, namespace: str) -> MemoryPolicy:
        """The namespace's policy (defaults when none was set); no access check."""
        return self._policies.get(namespace) or MemoryPolicy()

    def get(self, caller: Caller, namespace: str) -> MemoryPolicy:
        """The policy of a namespace the caller may see."""
        self.follow()
        return self.policy_for(self.visible_namespace(caller, namespace))

    def put(self, caller: Caller, namespace: str, body: Any) -> MemoryPolicy:
        """Replace a namespace's policy durably; emits ``policy_changed``."""
        name = self.visible_namespace(caller, namespace)
        with self._lock:
            current = self.policy_for(name)
            policy = MemoryPolicy.parse(body, consolidated_count=current.consolidated_count)
            self.store.write([Op.put("meta", META_PREFIX + name, orjson.dumps(asdict(policy)))])
            self._set(name, policy)
        changed = sorted(k for k, v in asdict(policy).items() if getattr(current, k) != v)
        self.events.emit(
            "policy_changed",
            namespace=name,
            details={"changed": changed, "key_id": caller.key_id},
        )
        return policy

    def count_consolidated(self, namespace: str, merged: int) -> None:
        """Add to the server-managed ``consolidated_count`` (for the consolidation job)."""
        with self._lock:
            policy = self.policy_for(namespace)
            updated = replace(policy, consolidated_count=policy.consolidated_count + merged)
            self.store.write(
                [Op.put("meta", META_PREFIX + namespace, orjson.dumps(asdict(updated)))]
            )
            self._set(namespace, updated)

    def rate_limits(self, namespace: str) -> RateLimitPolicy | None:
        """The enforced limits of ``namespace`` (called on every request, on the event loop: a
        dict lookup; on a shared store another node's change arrives through the follower's
        LISTEN wake-up or the next catch-up, never by a store read here)."""
        return self._limits.get(namespace)

    @property
    def any_rate_limits(self) -> bool:
        """Whether any namespace is rate limited (lets the layer skip reading bodies)."""
        return bool(self._limits)
