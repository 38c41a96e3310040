"""What ``doctor`` observes: this process, this host's addresses, the key store.

Split from ``doctor.py`` (which only judges) because these functions read the operating system:
``/proc/net`` for the host's addresses (a server bound to ``0.0.0.0`` in a container is private
when every address of the container is), ``statvfs('/')`` for a read-only root, the effective
UID, and the key store for keys, their ages and the root key's usage counters.
"""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.keys.store import ROOT_KEY_ID, KeyStore
from dakera_server.security.doctor.checks import Facts
from dakera_server.security.keys import ROOT_KEY_META

__all__ = ["gather", "host_addresses", "key_facts", "process_facts"]

DOCTOR = Caller("doctor", "doctor", Scope.SUPER_ADMIN, None)
FIB_TRIE = Path("/proc/net/fib_trie")
IF_INET6 = Path("/proc/net/if_inet6")


def host_addresses() -> tuple[str, ...] | None:
    """Every local (non-loopback) address of this network namespace, from ``/proc/net``."""
    if not FIB_TRIE.exists():
        return None
    found: list[str] = []
    previous = ""
    for line in FIB_TRIE.read_text().splitlines():
        stripped = line.strip()
        # "|-- 10.0.0.5" followed by "/32 host LOCAL": a local address of this namespace.
        if stripped.startswith("/32 host LOCAL") and previous.startswith("|-- "):
            address = previous[4:].strip()
            if address not in found and not ipaddress.ip_address(address).is_loopback:
                found.append(address)
        previous = stripped
    if IF_INET6.exists():
        for line in IF_INET6.read_text().splitlines():
            raw = line.split()[0]
            address = str(ipaddress.IPv6Address(int(raw, 16)))
            if not ipaddress.ip_address(address).is_loopback and address not in found:
                found.append(address)
    return tuple(found)


def _root_read_only() -> bool | None:
    try:
        return bool(os.statvfs("/").f_flag & os.ST_RDONLY)
    except OSError:
        return None


def process_facts() -> dict[str, object]:
    """The effective UID, the root file system's mode and the host's addresses."""
    return {
        "uid": os.geteuid(),
        "root_read_only": _root_read_only(),
        "host_addresses": host_addresses(),
    }


def key_facts(keys: KeyStore) -> dict[str, object]:
    """Stored keys, the root key's usage counters, and what is known of a generated root key."""
    stored = keys.meta(ROOT_KEY_META)
    bits = None if stored is None else orjson.loads(stored).get("bits")
    return {
        "keys": tuple(keys.list_keys(DOCTOR)),
        "root_usage": keys.usage.get(ROOT_KEY_ID),
        "generated_root_key": stored is not None,
        "generated_root_bits": bits if isinstance(bits, int) else None,
    }


def gather(keys: KeyStore | None, **request: object) -> Facts:
    """All facts: this process, the key store (None when there is none), the asking request."""
    values: dict[str, object] = {"now": time.time(), **process_facts(), **request}
    if keys is not None:
        values.update(key_facts(keys))
    return Facts(**values)  # type: ignore[arg-type]
