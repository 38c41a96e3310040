"""The production self-check: ``security.md``'s checklist, item by item, for one deployment.

``examine(settings, facts)`` turns a configuration and what could be observed about the running
system (``Facts``: the process's UID and root file system, the host's addresses, the stored keys
and the root key's usage counters, how the asking request arrived) into a ``Report``. The same
report backs ``dakera-server doctor`` (a table) and ``GET /v1/admin/doctor`` (JSON). A failed
(or unobservable) ``Required`` item makes the command exit non-zero; ``Recommended`` items are
reported the same way but never fail it. Items nothing here can observe (the host firewall,
image signatures) are listed as ``manual`` so the table is the whole checklist.

Gathering the facts lives in ``security/doctor/facts.py``; this module only judges them, so a
test can hand it any combination.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from dakera_server.config import Settings
from dakera_server.engine.access import Scope
from dakera_server.engine.keys.records import KeyRecord
from dakera_server.engine.keys.rules import ROOT_KEY_BITS, key_entropy_bits
from dakera_server.engine.keys.usage import KeyUsage
from dakera_server.security.doctor.report import (
    FAIL,
    MANUAL,
    PASS,
    RECOMMENDED,
    REQUIRED,
    UNKNOWN,
    Finding,
    Report,
    render_table,
)

__all__ = [
    "FAIL",
    "MANUAL",
    "PASS",
    "REQUIRED",
    "Facts",
    "Finding",
    "Report",
    "examine",
    "render_table",
]

MIN_ROOT_BITS = ROOT_KEY_BITS
ROTATION_DAYS = 90
DAY = 86_400
# Routes an operator's root key is expected on; anything else is an application using it.
OPERATOR_ROUTES = ("/admin", "/v1/admin", "/v1/auth/whoami", "/v1/audit", "/health", "/metrics")


@dataclass(frozen=True)
class Facts:
    """What was observed besides the settings; ``None`` means it could not be observed."""

    now: float
    uid: int | None = None
    root_read_only: bool | None = None
    host_addresses: tuple[str, ...] | None = None
    keys: tuple[KeyRecord, ...] | None = None
    root_usage: KeyUsage | None = None
    generated_root_bits: int | None = None
    generated_root_key: bool = False
    request_scheme: str | None = None
    request_proxied: bool | None = None
    request_peer: str | None = None
    notes: dict[str, str] = field(default_factory=dict)


def _internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _root_key(settings: Settings, facts: Facts) -> Finding:
    item = "Root API key with 256-bit+ entropy"
    if not settings.auth_enabled:
        return Finding("root_key_entropy", item, REQUIRED, FAIL, "authentication is disabled")
    if settings.root_api_key is not None:
        bits = key_entropy_bits(settings.root_api_key)
        source = "DAKERA_ROOT_API_KEY"
    elif facts.generated_root_bits is not None:
        bits, source = facts.generated_root_bits, "the root key the server generated"
    elif facts.generated_root_key:
        return Finding(
            "root_key_entropy", item, REQUIRED, FAIL,
            "the server generated the root key before its size was recorded; set "
            "DAKERA_ROOT_API_KEY=$(openssl rand -hex 32)",
        )  # fmt: skip
    else:
        return Finding(
            "root_key_entropy", item, REQUIRED, UNKNOWN,
            "no DAKERA_ROOT_API_KEY and no generated root key seen (no data directory yet)",
        )  # fmt: skip
    if bits >= MIN_ROOT_BITS:
        return Finding("root_key_entropy", item, REQUIRED, PASS, f"{source}: ~{bits} bits")
    return Finding(
        "root_key_entropy", item, REQUIRED, FAIL,
        f"{source}: ~{bits} bits, below {MIN_ROOT_BITS}; make one with "
        "DAKERA_ROOT_API_KEY=$(openssl rand -hex 32)",
    )  # fmt: skip


def _active(keys: Iterable[KeyRecord], now: float) -> list[KeyRecord]:
    return [k for k in keys if k.is_active(now) and not k.is_expired(now)]


def _scoped_keys(facts: Facts) -> Finding:
    item = "Scoped application keys (least privilege)"
    if facts.keys is None:
        return Finding(
            "scoped_keys", item, REQUIRED, UNKNOWN, "no key store to read (no DAKERA_DATA_DIR yet)"
        )
    scoped = [k for k in _active(facts.keys, facts.now) if k.scope is not Scope.SUPER_ADMIN]
    if not scoped:
        return Finding(
            "scoped_keys", item, REQUIRED, FAIL,
            "no active read/write/admin key: create one per application "
            "(POST /admin/keys or `dakera-server keys create`)",
        )  # fmt: skip
    names = ", ".join(sorted(f"{k.name} ({k.scope.wire})" for k in scoped)[:5])
    return Finding("scoped_keys", item, REQUIRED, PASS, f"{len(scoped)} scoped: {names}")


def _root_unused(facts: Facts) -> Finding:
    item = "Root key used only by operators (usage counters)"
    if facts.root_usage is None:
        return Finding(
            "root_key_usage",
            item,
            REQUIRED,
            UNKNOWN,
            "no key store to read (no DAKERA_DATA_DIR yet)",
        )
    app_calls = {
        endpoint: count
        for endpoint, count in facts.root_usage.by_endpoint.items()
        if not endpoint.partition(" ")[2].startswith(OPERATOR_ROUTES)
    }
    if not app_calls:
        return Finding(
            "root_key_usage", item, REQUIRED, PASS,
            f"{facts.root_usage.total} root-key requests, all on operator routes",
        )  # fmt: skip
    top = sorted(app_calls.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{endpoint} x{count}" for endpoint, count in top)
    return Finding(
        "root_key_usage", item, REQUIRED, FAIL,
        f"the root key served {sum(app_calls.values())} application requests ({listed}): "
        "give applications scoped keys",
    )  # fmt: skip


def _tls(settings: Settings, facts: Facts) -> Finding:
    item = "TLS on all external endpoints (reverse proxy)"
    if facts.request_scheme is not None:
        if facts.request_proxied and facts.request_scheme == "https":
            return Finding(
                "tls_proxy", item, REQUIRED, PASS,
                "this check reached the server over HTTPS through a trusted proxy",
            )  # fmt: skip
        peer = facts.request_peer or "?"
        if not facts.request_proxied and not _internal(peer):
            return Finding(
                "tls_proxy", item, REQUIRED, FAIL,
                f"this check reached the server over plain {facts.request_scheme} from {peer}, "
                "not through a trusted proxy",
            )  # fmt: skip
        if facts.request_proxied:
            return Finding(
                "tls_proxy", item, REQUIRED, FAIL,
                "the trusted proxy forwarded this check as plain http (X-Forwarded-Proto)",
            )  # fmt: skip
    if settings.trusted_proxies:
        return Finding(
            "tls_proxy", item, REQUIRED, PASS,
            "TLS terminates at the trusted proxies " + ", ".join(settings.trusted_proxies),
        )  # fmt: skip
    return Finding(
        "tls_proxy", item, REQUIRED, FAIL,
        "no DAKERA_TRUSTED_PROXIES: put nginx/Caddy with TLS in front (deploy/) and list it",
    )  # fmt: skip


def _bind(settings: Settings, facts: Facts) -> Finding:
    item = "Server behind reverse proxy (port 3300 not public)"
    host = settings.host
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        unspecified = host == ""
    if not unspecified and (host == "localhost" or _internal(host)):
        return Finding("bind_address", item, REQUIRED, PASS, f"bound to {host} (not public)")
    if not unspecified:
        return Finding(
            "bind_address", item, REQUIRED, FAIL,
            f"DAKERA_HOST={host} is a public address: bind to loopback or a private one",
        )  # fmt: skip
    if facts.host_addresses is None:
        return Finding(
            "bind_address", item, REQUIRED, FAIL,
            f"DAKERA_HOST={host} listens on every address and this host's could not be read",
        )  # fmt: skip
    public = [a for a in facts.host_addresses if not _internal(a)]
    if public:
        return Finding(
            "bind_address", item, REQUIRED, FAIL,
            f"DAKERA_HOST={host} listens on public {', '.join(public[:3])}",
        )  # fmt: skip
    return Finding(
        "bind_address", item, REQUIRED, PASS,
        f"DAKERA_HOST={host}, and every address of this host is private "
        f"({', '.join(facts.host_addresses[:4])})",
    )  # fmt: skip


def _simple(settings: Settings) -> list[Finding]:
    encryption = settings.encryption_key is not None
    cors_any = "*" in settings.cors_origins
    return [
        Finding(
            "encryption", "Encryption at rest (DAKERA_ENCRYPTION_KEY)", RECOMMENDED,
            PASS if encryption else FAIL,
            "AES-256-GCM at rest" if encryption else "DAKERA_ENCRYPTION_KEY is not set",
        ),
        Finding(
            "cors", "CORS restricted to application domains", RECOMMENDED,
            FAIL if cors_any else PASS,
            "DAKERA_CORS_ORIGINS=* lets every web site call the API" if cors_any
            else f"origins: {', '.join(settings.cors_origins) or 'none (no browser access)'}",
        ),
        Finding(
            "rate_limits", "Rate limiting tuned for workload", RECOMMENDED,
            PASS if settings.rate_limit_rps > 0 else FAIL,
            f"RATE_LIMIT_RPS={settings.rate_limit_rps}, RATE_LIMIT_BURST="
            f"{settings.rate_limit_burst}" + (" (off)" if settings.rate_limit_rps == 0 else ""),
        ),
        Finding(
            "audit", "Audit logging enabled", RECOMMENDED,
            PASS if settings.audit_enabled else FAIL,
            "DAKERA_AUDIT_ENABLED=true" if settings.audit_enabled
            else "DAKERA_AUDIT_ENABLED is off",
        ),
    ]  # fmt: skip


def _rotation(facts: Facts) -> Finding:
    item = f"Key rotation schedule ({ROTATION_DAYS} days)"
    if facts.keys is None:
        return Finding(
            "key_rotation",
            item,
            RECOMMENDED,
            UNKNOWN,
            "no key store to read (no DAKERA_DATA_DIR yet)",
        )
    old = [
        k for k in _active(facts.keys, facts.now) if facts.now - k.created_at > ROTATION_DAYS * DAY
    ]
    if old:
        ids = ", ".join(k.key_id for k in old[:5])
        return Finding(
            "key_rotation", item, RECOMMENDED, FAIL,
            f"{len(old)} active key(s) older than {ROTATION_DAYS} days: {ids} (rotate them)",
        )  # fmt: skip
    return Finding(
        "key_rotation", item, RECOMMENDED, PASS, f"no active key older than {ROTATION_DAYS} days"
    )


def _namespace_keys(facts: Facts) -> Finding:
    item = "Namespace-scoped keys for multi-tenant deployments"
    if facts.keys is None:
        return Finding("namespace_keys", item, RECOMMENDED, UNKNOWN, "no key store to read")
    scoped = [k for k in _active(facts.keys, facts.now) if k.scope is not Scope.SUPER_ADMIN]
    unrestricted = [k for k in scoped if k.namespaces is None]
    if scoped and len(unrestricted) == len(scoped):
        return Finding(
            "namespace_keys", item, RECOMMENDED, FAIL,
            "every application key reaches every namespace; restrict tenants' keys",
        )  # fmt: skip
    if not scoped:
        return Finding("namespace_keys", item, RECOMMENDED, PASS, "no application keys yet")
    return Finding(
        "namespace_keys", item, RECOMMENDED, PASS,
        f"{len(scoped) - len(unrestricted)} of {len(scoped)} application keys are restricted",
    )  # fmt: skip


def _container(facts: Facts) -> Finding:
    item = "Container runs as non-root with read-only filesystem"
    if facts.uid is None or facts.root_read_only is None:
        return Finding("non_root_read_only", item, RECOMMENDED, UNKNOWN, "not observable here")
    problems = []
    if facts.uid == 0:
        problems.append("runs as root (UID 0)")
    if not facts.root_read_only:
        problems.append("the root file system is writable")
    if problems:
        return Finding("non_root_read_only", item, RECOMMENDED, FAIL, "; ".join(problems))
    return Finding(
        "non_root_read_only", item, RECOMMENDED, PASS,
        f"UID {facts.uid}, read-only root file system",
    )  # fmt: skip


def examine(settings: Settings, facts: Facts) -> Report:
    """The checklist of ``security.md`` judged on ``settings`` and ``facts``, in its order."""
    findings = [
        _root_key(settings, facts),
        _scoped_keys(facts),
        _root_unused(facts),
        _tls(settings, facts),
        _bind(settings, facts),
        Finding(
            "firewall", "Firewall: only expose 443 externally", REQUIRED, MANUAL,
            "not observable from the server: check the host or cloud firewall",
        ),
        *_simple(settings),
        _rotation(facts),
        _namespace_keys(facts),
        _container(facts),
        Finding(
            "image_signature", "Image signature verification before deploy", RECOMMENDED, MANUAL,
            "not observable from the server: verify the image digest/signature at deploy",
        ),
    ]  # fmt: skip
    return Report(tuple(findings))
