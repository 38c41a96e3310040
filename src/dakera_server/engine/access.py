"""Who is calling, and which namespaces they may see.

The security layer builds a ``Caller`` from the presented key; the engine receives it and asks
``can_see`` before touching a namespace, so that a namespace a key may not see behaves exactly
like one that does not exist.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["AGENT_NAMESPACE_PREFIX", "Caller", "Scope", "agent_namespace"]

AGENT_NAMESPACE_PREFIX = "_dakera_agent_"


def agent_namespace(agent_id: str) -> str:
    """The namespace an agent's memories live in (dakera-api.md §1.12)."""
    return AGENT_NAMESPACE_PREFIX + agent_id


class Scope(IntEnum):
    """Hierarchical key scopes: each includes every lower one. ``PUBLIC`` needs no key."""

    PUBLIC = 0
    READ = 1
    WRITE = 2
    ADMIN = 3
    SUPER_ADMIN = 4

    @property
    def wire(self) -> str:
        """The scope's name on the wire (``read``, ``super_admin`` …)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Scope:
        """``read|write|admin|super_admin`` → Scope; ValueError otherwise."""
        try:
            scope = cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown scope {value!r}") from None
        if scope is cls.PUBLIC:
            raise ValueError("'public' is not a key scope")
        return scope


@dataclass(frozen=True)
class Caller:
    """An authenticated (or, with auth off, assumed) caller.

    ``namespaces`` is ``None`` for every namespace, else exact names and ``prefix*`` patterns.
    """

    key_id: str
    name: str
    scope: Scope
    namespaces: tuple[str, ...] | None = None
    expires_at: int | None = None
    auth_enabled: bool = True

    @property
    def unrestricted(self) -> bool:
        """True when the key may see every namespace."""
        return self.namespaces is None or "*" in self.namespaces

    def can_see(self, namespace: str) -> bool:
        """Whether this caller may read (and, with the scope for it, write) ``namespace``."""
        if self.unrestricted:
            return True
        assert self.namespaces is not None
        for grant in self.namespaces:
            if grant.endswith("*"):
                if namespace.startswith(grant[:-1]):
                    return True
            elif grant == namespace:
                return True
        return False

    def can_see_agent(self, agent_id: str) -> bool:
        """Agent data is authorised against the agent's namespace."""
        return self.can_see(agent_namespace(agent_id))

    def has(self, scope: Scope) -> bool:
        """Whether the key's scope includes ``scope``."""
        return self.scope >= scope

    def grant_matches_pattern(self, pattern: str) -> bool:
        """Whether a grant pattern (for a new key) lies within this caller's grants."""
        if self.unrestricted:
            return True
        assert self.namespaces is not None
        for grant in self.namespaces:
            if grant.endswith("*") and pattern.startswith(grant[:-1]):
                return True
            if grant == pattern or fnmatch.fnmatchcase(pattern, grant):
                return True
        return False


ANONYMOUS = Caller(key_id="anonymous", name="anonymous", scope=Scope.PUBLIC, namespaces=())
