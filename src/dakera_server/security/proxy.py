"""Trusted reverse proxies: the real client address and scheme, only from a proxy we trust.

Behind nginx or Caddy every request's TCP peer is the proxy. The proxy says who the client was
in ``X-Forwarded-For`` and whether it spoke TLS in ``X-Forwarded-Proto``, but any client can
send those headers too. So they are believed only when the direct peer is in
``DAKERA_TRUSTED_PROXIES``; from anyone else they are ignored and the peer stays the client.

``X-Forwarded-For`` is read from the right: each proxy appends the address it saw, so the last
entry was written by the trusted proxy itself, and entries further left are client-supplied
unless they too are trusted proxies (a chain of them). The first untrusted address from the
right is the client. This is uvicorn's ``ProxyHeadersMiddleware`` rule; the server starts
uvicorn with ``proxy_headers=False`` so that one place, driven by the settings, decides (uvicorn
otherwise trusts ``127.0.0.1`` by default, which lets any local process forge the audit ``ip``).

The layer is outermost: every later layer (audit, rate limits, doctor) sees the rewritten
``scope["client"]`` and ``scope["scheme"]``. It also leaves ``PROXIED`` in the request state so
a handler can tell a request that came through a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PROXIED", "ProxyHeadersMiddleware", "TrustedProxies"]

PROXIED = "dakera.proxied"
SCHEMES = {"http": "http", "https": "https"}
WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """A set of networks; ``contains`` answers for a textual address (False when unparsable)."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def contains(self, address: str) -> bool:
        """Whether ``address`` (as it appears in a scope or header) is a trusted proxy."""
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def client_of(self, forwarded_for: str) -> str | None:
        """The client address of an ``X-Forwarded-For`` value (None when it names none)."""
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        for entry in reversed(entries):
            if not self.contains(entry):
                return _valid_address(entry)
        return _valid_address(entries[0]) if entries else None


def _valid_address(entry: str) -> str | None:
    """The address of one forwarded entry, or None when it is not an IP address."""
    try:
        return str(ipaddress.ip_address(entry.strip("[]")))
    except ValueError:
        return None


def _joined_header(scope: Scope, name: bytes) -> str | None:
    """Every value of a repeated header, joined in order with commas (RFC 9110 5.3)."""
    values = [raw.decode("latin-1") for key, raw in scope.get("headers", ()) if key == name]
    return ",".join(values) if values else None


class ProxyHeadersMiddleware:
    """Pure ASGI layer: from a trusted peer, take client address and scheme from the headers."""

    def __init__(self, app: ASGIApp, *, trusted: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.trusted:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client and self.trusted.contains(client[0]):
            scope.setdefault("state", {})[PROXIED] = True
            proto = _joined_header(scope, b"x-forwarded-proto")
            if proto is not None:
                # The proxy appends too: the last value is the one it wrote.
                scheme = proto.split(",")[-1].strip().lower()
                table = WEBSOCKET_SCHEMES if scope["type"] == "websocket" else SCHEMES
                if scheme in table:
                    scope["scheme"] = table[scheme]
            forwarded = _joined_header(scope, b"x-forwarded-for")
            if forwarded is not None:
                address = self.trusted.client_of(forwarded)
                if address is not None:
                    scope["client"] = (address, 0)
        await self.app(scope, receive, send)
