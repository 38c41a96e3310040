"""Process diagnostics and the non-secret configuration, for ``/ops/diagnostics`` and
``/debug/config``.

The configuration view is derived from the settings table: a setting flagged ``secret`` (keys,
passphrases, URLs that carry credentials by design) is never shown, and a password inside any
other URL is replaced by ``***``, so nothing here can leak a credential.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dakera_server.config import Settings
from dakera_server.config.table import SETTINGS

__all__ = ["REDACTED", "process_facts", "public_settings", "redact_url"]

REDACTED = "***"


def redact_url(value: str) -> str:
    """``value`` with the password of a URL (``scheme://user:password@host``) replaced."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or parts.password is None:
        return value
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:{REDACTED}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _wire(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return redact_url(value)
    return value


def public_settings(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """Every non-secret setting by environment name, and the names of secret ones that are set
    (their values never leave the server)."""
    shown: dict[str, Any] = {}
    withheld: list[str] = []
    for setting in SETTINGS:
        value = getattr(settings, setting.attr)
        if setting.secret:
            if value is not None:
                withheld.append(setting.env)
            continue
        shown[setting.env] = _wire(value)
    return shown, withheld


def _rss_bytes() -> int:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _open_fds() -> int | None:
    fds = Path("/proc/self/fd")
    return len(list(fds.iterdir())) if fds.exists() else None


def process_facts() -> dict[str, Any]:
    """Memory, threads, file descriptors, CPU time and load of this process."""
    times = os.times()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "pid": os.getpid(),
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "memory_bytes": _rss_bytes(),
        "peak_memory_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
        "thread_count": threading.active_count(),
        "threads": sorted({t.name for t in threading.enumerate()}),
        "open_fds": _open_fds(),
        "cpu_user_seconds": round(times.user, 3),
        "cpu_system_seconds": round(times.system, 3),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "gc_counts": list(gc.get_count()),
    }
