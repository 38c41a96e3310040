"""Small JSON documents the lifecycle engine keeps in the store's ``meta`` table.

Configuration changed at runtime (decay, AutoPilot, per-agent consolidation), counters and run
logs must survive a restart, but they are tiny and read rarely, so each is one ``meta`` row.
"""

from __future__ import annotations

from typing import Any

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.storage.base import Op, Store

__all__ = ["SYSTEM", "StateStore"]

PREFIX = "lifecycle."

# Background passes act for the server itself: they see every agent.
SYSTEM = Caller(key_id="system", name="lifecycle", scope=Scope.SUPER_ADMIN, namespaces=None)


class StateStore:
    """Read and write lifecycle documents (``lifecycle.<name>`` rows of ``meta``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, name: str) -> dict[str, Any] | None:
        """The document saved under ``name``, or ``None``."""
        row = self.store.get_row("meta", PREFIX + name)
        if row is None:
            return None
        document = orjson.loads(row.payload)
        return document if isinstance(document, dict) else None

    def op(self, name: str, document: dict[str, Any]) -> Op:
        """The operation that saves ``document`` (to commit with other changes)."""
        return Op.put("meta", PREFIX + name, orjson.dumps(document))

    def delete_op(self, name: str) -> Op:
        """The operation that removes the document ``name``."""
        return Op.delete("meta", PREFIX + name)

    def save(self, name: str, document: dict[str, Any]) -> None:
        """Save ``document`` durably."""
        self.store.write([self.op(name, document)])

    def names(self, prefix: str) -> list[str]:
        """Names of the saved documents starting with ``prefix``."""
        start = PREFIX + prefix
        return sorted(
            r.key[len(PREFIX) :] for r in self.store.iter_rows("meta") if r.key.startswith(start)
        )
