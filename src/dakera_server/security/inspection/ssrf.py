"""Where a URL really points: internal-address checks in every spelling (SSRF).

Two uses with different strictness:

* ``url_refusal(url)`` is for URL-valued *fields* (webhooks, ODE endpoints, base URLs). It is an
  allow-list: http/https only, a public DNS name or a public IP literal, no user-info, no
  encoded host. Loopback, private, link-local, shared (CGNAT), unspecified and multicast
  addresses are refused in every spelling a URL parser might accept (decimal ``2130706433``,
  hex ``0x7f000001``, octal ``0177.0.0.1``, short ``127.1``, IPv6-mapped ``[::ffff:7f00:1]``,
  NAT64, 6to4), and so are cloud-metadata names and addresses, single-label names (they
  resolve inside the network), ``*.internal``/``*.local``/``*.localhost`` and wildcard-DNS
  names that embed an internal address (``169.254.169.254.nip.io``), and every name of the
  redirect and DNS-rebinding services built for SSRF (``…302.r3dir.me``, ``…rbndr.us``).
* ``text_mentions_ssrf(text)`` is for free text, where people legitimately write
  ``http://localhost:3000``: it flags only shapes with no everyday use — cloud-metadata
  targets, obfuscated numeric hosts, IPv6-mapped IPv4 hosts, exotic schemes (gopher, dict…)
  and user-info tricks with backslashes.

Neither resolves DNS (slow, and the answer can change before the connection is made): code
that connects to a user-supplied URL must check the resolved address again with
``address_refusal``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

__all__ = ["address_refusal", "host_refusal", "text_mentions_ssrf", "url_refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Hetzner…
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "rancher-metadata",
        "metadata.azure.internal",
    }
)
LOOPBACK_NAMES = frozenset(
    {
        "localhost",
        "ip6-localhost",
        "ip6-loopback",
        "localtest.me",
        "lvh.me",
        "vcap.me",
        "localh.st",
        "spoofed.burpcollaborator.net",
    }
)
# Services whose names resolve, rebind or redirect to whatever address the name itself encodes
# (``<base32 target>.302.r3dir.me``, ``7f000001.c0a80001.rbndr.us``, ``make-…-rebind-…1u.ms``).
# The encodings vary (base32, hex, dashed), so every name under them is refused: they exist to
# reach addresses a URL check would refuse, and no webhook or endpoint lives there.
REDIRECT_SERVICES = ("r3dir.me", "rbndr.us", "1u.ms")
INTERNAL_SUFFIXES = (
    ".localhost",
    ".internal",
    ".local",
    ".localdomain",
    ".home.arpa",
    ".localtest.me",
    ".lvh.me",
    ".vcap.me",
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
CANONICAL_IPV4 = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
DASHED_IPV4 = re.compile(r"(?:^|[.-])(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?:$|[.-])")
DOTTED_IPV4 = re.compile(r"(?:^|\.)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?=$|\.)")
SCHEME_BEFORE = re.compile(r"[a-z][a-z0-9+.\-]{1,15}$")
AUTHORITY = re.compile(r"[^\s/?#\"'<>]*")
EVERYDAY_LOOPBACK = frozenset({"127.0.0.1", "127.0.1.1", "[::1]"})
SAFE_URL_SCHEMES = frozenset({"http", "https"})
TEXT_SCHEMES_OK = frozenset(
    {"http", "https", "ftp", "ftps", "ws", "wss", "git", "ssh", "sftp", "s3", "gs", "postgres"}
)
# Schemes whose only everyday use in a request is talking to raw internal services.
EXOTIC_SCHEMES = frozenset({"gopher", "dict", "tftp", "netdoc", "jar", "expect", "phar", "ldap"})
METADATA_TEXT = (
    "169.254.169.254",
    "metadata.google.internal",
    "100.100.100.200",
    "fd00:ec2::254",
    "169.254.170.2",
    "/latest/meta-data",
    "/computemetadata/v1",
)
URL_FORBIDDEN_CHARS = re.compile(r"[\s\x00-\x1f\x7f\\<>\"'`{}|^]")
MAX_URL_LENGTH = 2048


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse ``host`` the way lenient URL parsers do (None when it is not all numeric).

    An all-numeric host (decimal, ``0x`` hex or ``0``-prefixed octal parts, one to four of them)
    is an IPv4 address to most HTTP clients even when it does not look like one. Values that
    overflow are reduced modulo 2**32, as some parsers do.
    """
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not 1 <= len(parts) <= 4 or not all(NUMERIC_PART.match(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            numbers.append(int(part, 8) if set(part) <= set("01234567") else int(part))
        else:
            numbers.append(int(part))
    value = 0
    for index, number in enumerate(numbers[:-1]):
        value |= (number & 0xFF) << (8 * (3 - index))
    value |= numbers[-1] & ((1 << (8 * (5 - len(numbers)))) - 1)
    return ipaddress.IPv4Address(value & 0xFFFFFFFF)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or int(address) >> 32 == 0:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why connecting to ``address`` is refused (a short reason), or None when it is public."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address) and not (
        address.is_loopback or address.is_unspecified
    ):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not (address.teredo and embedded.is_global):
            reason = address_refusal(embedded)
            if reason is not None:
                return reason
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def _ip_literal(host: str) -> tuple[IPAddress | None, bool]:
    """The address a host spells, and whether the spelling is non-canonical (obfuscated)."""
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1].split("%", 1)[0]
        try:
            v6 = ipaddress.IPv6Address(inner)
        except ValueError:
            return None, True
        return v6, v6.ipv4_mapped is not None or _embedded_ipv4(v6) is not None
    v4 = _numeric_ipv4(host)
    if v4 is None:
        return None, False
    return v4, not CANONICAL_IPV4.match(host.rstrip("."))


def _embedded_in_name(host: str) -> ipaddress.IPv4Address | None:
    """An internal IPv4 address written inside a DNS name (``10.0.0.1.nip.io``, ``10-0-0-1…``)."""
    for pattern in (DOTTED_IPV4, DASHED_IPV4):
        for match in pattern.finditer(host):
            octets = [int(g) for g in match.groups()]
            if all(o <= 255 for o in octets):
                address = ipaddress.IPv4Address(".".join(map(str, octets)))
                if address_refusal(address) is not None:
                    return address
    return None


def host_refusal(host: str) -> str | None:
    """Why a URL field may not point at ``host`` (already lower-cased, port removed)."""
    if not host:
        return "it has no host"
    address, _ = _ip_literal(host)
    if address is not None:
        return address_refusal(address)
    if host.startswith("["):
        return "its host is not a valid IPv6 address"
    name = host.rstrip(".")
    if not name.isascii():
        return "its host is not plain ASCII (use the punycode form)"
    if name in METADATA_NAMES:
        return "a cloud metadata host"
    if name in LOOPBACK_NAMES or name.endswith(INTERNAL_SUFFIXES):
        return "an internal host name"
    if any(name == s or name.endswith("." + s) for s in REDIRECT_SERVICES):
        return "a redirect or DNS-rebinding service"
    labels = name.split(".")
    if len(name) > 253 or not all(LABEL.match(label) for label in labels):
        return "its host is not a valid DNS name"
    if len(labels) < 2:
        return "a single-label host name (these resolve inside the network)"
    if labels[-1].isdigit():
        return "its host is not a valid DNS name"
    if _embedded_in_name(name) is not None:
        return "a host name that embeds an internal address"
    return None


def url_refusal(url: str) -> str | None:
    """Why a URL-valued field is refused (a reason safe to show), or None when it is allowed."""
    if len(url) > MAX_URL_LENGTH:
        return f"it is longer than {MAX_URL_LENGTH} characters"
    if not url.isascii() or URL_FORBIDDEN_CHARS.search(url):
        return "it contains characters a URL may not hold"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme.lower() not in SAFE_URL_SCHEMES:
        return "only http and https URLs are accepted"
    if "@" in parts.netloc:
        return "user names or passwords inside URLs are not accepted"
    if "%" in parts.netloc:
        return "its host is percent-encoded"
    if port == 0:
        return "port 0 is not a valid port"
    host = (parts.hostname or "").lower()
    reason = host_refusal(f"[{host}]" if ":" in host else host)
    if reason is not None:
        return f"it points at {reason}" if reason.startswith("a") else reason
    # A public host that forwards somewhere else (``?url=http://127.0.0.1``) is refused too.
    decoded = unquote(unquote(url)).lower()
    for _, authority, _ in urls_in(decoded[len(parts.scheme) + 3 :]):
        inner = _authority_host(authority)
        if inner is None or host_refusal(inner) is not None:
            return "it carries a second URL that points inside the network"
    return None


def _authority_host(authority: str) -> str | None:
    host = authority.rsplit("@", 1)[-1].lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else None
    return host.split(":", 1)[0]


def _text_host_is_suspicious(authority: str) -> bool:
    if "\\" in authority or authority.count("@") > 1:
        return True
    host = _authority_host(authority)
    if not host:
        return False
    if not host.isascii() and unicodedata.normalize("NFKC", host) != host:
        return True  # ⓔⓧⓐⓜⓟⓛⓔ.ⓒⓞⓜ: a filter-bypass spelling, never a real address
    address, obfuscated = _ip_literal(host)
    if address is not None:
        unusual_loopback = address.is_loopback and host not in EVERYDAY_LOOPBACK
        return obfuscated or unusual_loopback or address in METADATA_ADDRESSES
    name = host.rstrip(".")
    if name in METADATA_NAMES or name in ("ip6-localhost", "ip6-loopback"):
        return True
    embedded = _embedded_in_name(name)
    return embedded is not None and not CANONICAL_IPV4.match(name)


def urls_in(low: str) -> Iterator[tuple[str, str, bool]]:
    """(scheme, authority, passed_as_parameter) of every ``scheme://`` in lower-cased text.

    Found from each ``://`` outwards rather than by a regex scan of every position, which keeps
    long texts cheap. ``passed_as_parameter`` is true for ``…?url=http://…``.
    """
    index = low.find("://")
    while index != -1:
        scheme_match = SCHEME_BEFORE.search(low, max(0, index - 16), index)
        authority_match = AUTHORITY.match(low, index + 3)
        if scheme_match is not None and authority_match is not None:
            start = scheme_match.start()
            as_parameter = start > 0 and low[start - 1] == "="
            yield scheme_match.group(0), authority_match.group(0), as_parameter
        index = low.find("://", index + 3)


def text_mentions_ssrf(text: str) -> bool:
    """True when free text carries an SSRF shape with no everyday use (see the module doc)."""
    low = text.lower()
    if any(marker in low for marker in METADATA_TEXT):
        return True
    for scheme, authority, as_parameter in urls_in(low):
        if scheme in EXOTIC_SCHEMES:
            return True
        if scheme == "file" and (authority not in ("", "localhost") or _sensitive_file(low)):
            return True
        if scheme in TEXT_SCHEMES_OK and _text_host_is_suspicious(authority):
            return True
        if as_parameter:
            # a URL handed to another URL as a parameter, pointing inside: ?url=http://127.0.0.1
            host = _authority_host(authority)
            if host is not None and host_refusal(host) is not None:
                return True
    return False


def _sensitive_file(low: str) -> bool:
    return any(
        f"file://{host}{path}" in low
        for host in ("", "localhost")
        for path in ("/etc/", "/proc/", "/root/", "/var/run/", "/c:/windows", "\\")
    )
