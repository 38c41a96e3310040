"""Client of the ODE sidecar (GLiNER over HTTP), with the SSRF guard every outbound call needs.

Contract of the sidecar (dakera-api.md §4.6): ``POST {base}/ode/extract`` with
``{"content","agent_id","memory_id"?,"entity_types"?}`` answers
``{"entities":[{"text","label","start","end","score"}],"model","processing_time_ms"}``.

The target URL can come from an API client (a namespace's ``base_url``), so it is checked before
every call: http(s) only, no credentials in it, and every address its host resolves to must be a
public one. Loopback and private ranges (a sidecar on the same host or network) are allowed only
when the operator says so (``DAKERA_ODE_ALLOW_PRIVATE``); link-local (cloud metadata at
169.254.169.254), multicast, unspecified and reserved addresses never are. For plain http the
request goes to the address that was checked (``Host`` header kept), so a DNS answer that changes
between the check and the connect (rebinding) cannot redirect it. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from dakera_server.engine.entities.extractor import Entity, normalize_entity_type
from dakera_server.errors import InvalidInput, Unavailable

__all__ = ["OdeClient", "OdeResult", "check_target", "pinned_url"]

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refusal(address: IpAddress, allow_private: bool) -> str | None:
    """Why ``address`` may not be called, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "a link-local, multicast or unspecified address"
    if address.is_loopback or address.is_private or not address.is_global:
        if address.is_reserved and not address.is_private:
            return "a reserved address"
        return None if allow_private else "a loopback or private address"
    return None


def check_target(
    url: str,
    *,
    allow_private: bool,
    what: str = "the extractor URL",
    private_switch: str = "DAKERA_ODE_ALLOW_PRIVATE",
) -> tuple[str, list[IpAddress]]:
    """Validate an outbound URL; returns it normalised (no trailing /) and its addresses.

    Raises ``InvalidInput`` naming the rule that refused it (``what`` names the URL,
    ``private_switch`` the setting that allows private addresses).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{what} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInput(f"{what} must not carry credentials")
    if parts.query or parts.fragment:
        raise InvalidInput(f"{what} must not have a query or fragment")
    host = parts.hostname
    try:
        addresses: list[IpAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, parts.port or 0, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise InvalidInput(f"{what}'s host does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        reason = _refusal(address, allow_private)
        if reason is not None:
            hint = f" (set {private_switch}=true)" if "private" in reason else ""
            raise InvalidInput(f"{what} points to {reason}{hint}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")), addresses


@dataclass(frozen=True)
class OdeResult:
    """What the sidecar found, with the model it reports and how long the call took."""

    entities: list[Entity]
    model: str | None
    duration_ms: float


class OdeClient:
    """Calls one ODE sidecar; every failure is ``Unavailable`` (the caller may fall back)."""

    def __init__(
        self,
        base_url: str,
        *,
        allow_private: bool,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url
        self.allow_private = allow_private
        self.timeout = timeout

    def extract(
        self,
        content: str,
        *,
        agent_id: str,
        memory_id: str | None = None,
        entity_types: list[str] | None = None,
    ) -> OdeResult:
        """Entities of ``content`` according to the sidecar."""
        try:
            base, addresses = check_target(self.base_url, allow_private=self.allow_private)
        except InvalidInput as exc:
            raise Unavailable(f"the entity extractor is not reachable: {exc.message}") from exc
        body: dict[str, Any] = {"content": content, "agent_id": agent_id}
        if memory_id is not None:
            body["memory_id"] = memory_id
        if entity_types:
            body["entity_types"] = entity_types
        url, headers = self._pinned(base + "/ode/extract", addresses)
        started = time.perf_counter()
        try:
            with (
                httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as http,
                http.stream("POST", url, json=body, headers=headers) as response,
            ):
                if response.status_code != 200:
                    raise Unavailable(f"the entity extractor answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > MAX_RESPONSE_BYTES:
                        raise Unavailable("the entity extractor's answer is too large")
        except httpx.HTTPError as exc:
            raise Unavailable("the entity extractor did not answer") from exc
        duration = (time.perf_counter() - started) * 1000.0
        return self._parse(bytes(data), content, duration)

    @staticmethod
    def _pinned(url: str, addresses: list[IpAddress]) -> tuple[str, dict[str, str]]:
        return pinned_url(url, addresses)

    @staticmethod
    def _parse(raw: bytes, content: str, duration_ms: float) -> OdeResult:
        return _parse_entities(raw, content, duration_ms)


def pinned_url(url: str, addresses: list[IpAddress]) -> tuple[str, dict[str, str]]:
    """For http, send to the checked address with the original Host (no second lookup)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not addresses or parts.hostname is None:
        return url, {}
    try:
        ipaddress.ip_address(parts.hostname)
        return url, {}
    except ValueError:
        pass
    address = addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}


def _parse_entities(raw: bytes, content: str, duration_ms: float) -> OdeResult:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Unavailable("the entity extractor answered malformed JSON") from exc
    items = data.get("entities") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise Unavailable("the entity extractor's answer has no 'entities' list")
    model = data.get("model") if isinstance(data.get("model"), str) else None
    extractor = f"gliner:{model}" if model else "gliner"
    entities = []
    for item in items:
        if not isinstance(item, dict):
            raise Unavailable("the entity extractor answered a malformed entity")
        text, label = item.get("text"), item.get("label")
        score, start, end = item.get("score", 0.0), item.get("start", -1), item.get("end", -1)
        if not isinstance(text, str) or not isinstance(label, str):
            raise Unavailable("the entity extractor answered a malformed entity")
        if not isinstance(score, int | float) or not isinstance(start, int):
            raise Unavailable("the entity extractor answered a malformed entity")
        kind = normalize_entity_type(label) or label.strip().lower()
        if not isinstance(end, int) or not 0 <= start <= end <= len(content):
            start, end = -1, -1
        normalized = " ".join(text.lower().split())
        entities.append(
            Entity(kind, text, round(float(score), 4), extractor, start, end, normalized)
        )
    return OdeResult(entities, model, duration_ms)
