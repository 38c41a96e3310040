"""The maintenance gate: keeps requests out while a restore replaces the store underneath.

The app's outermost request handling asks ``enter`` for every request and calls ``leave`` when
it is answered. ``close`` refuses new requests and waits until the writes already in flight
(every method but GET/HEAD) have been answered, so the restore's transaction is the only writer
and the reload that follows sees everything. Reads in flight may finish: they change nothing.
"""

from __future__ import annotations

import threading

__all__ = ["MaintenanceGate"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class MaintenanceGate:
    """Counts requests in flight and refuses new ones while closed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writes = 0
        self.reason: str | None = None

    def enter(self, method: str) -> str | None:
        """Admit a request (``None``) or say why it must wait (the gate is closed)."""
        with self._cond:
            if self.reason is not None:
                return self.reason
            if method not in READ_METHODS:
                self._writes += 1
            return None

    def leave(self, method: str) -> None:
        """A request admitted by ``enter`` was answered."""
        if method in READ_METHODS:
            return
        with self._cond:
            self._writes -= 1
            self._cond.notify_all()

    def close(self, reason: str, timeout: float = 60.0) -> bool:
        """Refuse new requests with ``reason``; wait for writes in flight. False on timeout."""
        with self._cond:
            self.reason = reason
            return self._cond.wait_for(lambda: self._writes <= 0, timeout)

    def open(self) -> None:
        """Admit requests again."""
        with self._cond:
            self.reason = None
