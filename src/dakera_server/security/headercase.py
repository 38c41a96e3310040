"""Response header names that keep their case on the wire, whichever uvicorn protocol serves.

The sync SDK copies response headers into a plain ``dict`` (``requests`` keeps the wire case) and
looks up ``X-RateLimit-Limit`` case-sensitively (dakera-api.md §1.9), so those names must reach
the client exactly so. uvicorn's ``httptools`` protocol writes every header name through
``name.lower()``; its ``h11`` protocol keeps the case but costs ~0.1-0.2 ms more CPU per request
in pure Python (``bench/protocol.py``), a large share of a trivial request. A ``CasedName`` is a
``bytes`` whose ``lower()`` is itself: both protocols then write it as given, while every
comparison with a framing header (``content-length``, ``connection``...) still sees ordinary
bytes. ``tests/security/test_headercase.py`` reads the raw response bytes under both protocols,
so an uvicorn upgrade that lower-cases differently fails a test instead of the SDK.
"""

from __future__ import annotations

__all__ = ["CasedName"]


class CasedName(bytes):
    """A header name written to the wire in exactly this case (see the module docstring)."""

    __slots__ = ()

    def lower(self) -> bytes:
        """Itself: the name must not be lower-cased on its way out."""
        return self
