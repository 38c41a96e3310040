"""How the per-namespace memory policy (``policies.py``, §4.5) reaches the lifecycle jobs.

The policy store answers SDK defaults for every namespace. A namespace's policy takes over from
the global configuration only once it was customised (``PUT .../memory_policy`` with values
other than the defaults): then its per-type decay curves (and ``<type>_half_life_hours`` if
present), per-type default TTLs and spaced repetition apply to that namespace's memories. An
unset namespace keeps the global decay config, no default TTL and no TTL extension — so a fresh
install never expires or reshapes memories nobody asked it to.

Lookups run on the recall path (one per ranked candidate), so the adapter caches per namespace
and answers unset namespaces with one equality test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from dakera_server.engine.access import agent_namespace
from dakera_server.engine.lifecycle.policies import MemoryPolicy
from dakera_server.engine.memory.models import Memory

__all__ = ["NamespacePolicies"]

MAX_DOUBLINGS = 10


class NamespacePolicies:
    """Customised namespace policies as plain mappings, with the TTL rules built on them.

    Answers are cached per namespace; ``invalidate`` (wired to ``policy_changed`` events)
    drops a namespace's entry and tells the ``on_change`` listeners.
    """

    def __init__(self, policy_for: Callable[[str], MemoryPolicy]) -> None:
        self._policy_for = policy_for
        self._default = MemoryPolicy()
        self._cache: dict[str, Mapping[str, Any] | None] = {}
        self._lock = threading.Lock()
        self.on_change: list[Callable[[], None]] = []

    def __call__(self, namespace: str) -> Mapping[str, Any] | None:
        """The namespace's policy as a mapping, or ``None`` when it was not customised."""
        try:
            return self._cache[namespace]
        except KeyError:
            pass
        policy = self._policy_for(namespace)
        mapping = None if policy == self._default else asdict(policy)
        with self._lock:
            self._cache[namespace] = mapping
        return mapping

    def invalidate(self, namespace: str | None) -> None:
        """Forget the cached policy of ``namespace`` (all of them when ``None``)."""
        with self._lock:
            if namespace is None:
                self._cache.clear()
            else:
                self._cache.pop(namespace, None)
        for listener in self.on_change:
            listener()

    def default_ttl(self, agent_id: str, memory_type: str) -> int | None:
        """Seconds a new memory of this type lives when the client gave no TTL."""
        policy = self(agent_namespace(agent_id))
        value = None if policy is None else policy.get(f"{memory_type}_ttl_seconds")
        return value if isinstance(value, int) and value > 0 else None

    def extended_expiry(self, memory: Memory, now: int) -> int | None:
        """Spaced repetition: a recall hit pushes expiry to ``now + factor × base × 2^(hits-1)``."""
        if memory.expires_at is None:
            return None
        policy = self(agent_namespace(memory.agent_id))
        if policy is None:
            return memory.expires_at
        factor = policy.get("spaced_repetition_factor") or 0.0
        base = policy.get("spaced_repetition_base_interval_seconds") or 0
        if factor <= 0 or base <= 0:
            return memory.expires_at
        doublings = min(max(memory.access_count - 1, 0), MAX_DOUBLINGS)
        return max(memory.expires_at, now + int(factor * base * (2**doublings)))
