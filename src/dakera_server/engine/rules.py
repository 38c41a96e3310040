"""Field rules of the wire contract (dakera-api.md §1.12): names, limits, reserved markers.

The engine applies these to every write, whatever route or transport it came through, so a
rule lives in exactly one place. Every violation is an ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from dakera_server.errors import InvalidInput

__all__ = [
    "MEMORY_TYPES",
    "check_agent_id",
    "check_importance",
    "check_memory_id",
    "check_metadata",
    "check_namespace_name",
    "check_session_id",
    "check_tags",
    "parse_event_time",
    "parse_iso_time",
]

MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")
AGENT_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-.]*$")
SESSION_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-:.]*$")
NAMESPACE_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
MEMORY_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-:.]*$")
RESERVED_DERIVED_ID = re.compile(r"^mem_s[0-9a-f]{24}$")
AGENT_ID_MAX_BYTES = 241
SESSION_ID_MAX_BYTES = 256
NAMESPACE_MAX_BYTES = 128
MEMORY_ID_MAX_BYTES = 256
MAX_TAGS = 50
MAX_TAG_CHARS = 256
MAX_METADATA_FIELDS = 100
MAX_JSON_DEPTH = 32  # security.md: a top-level object is level 1; 33 nested levels are refused
ALLOWED_RESERVED_METADATA = frozenset({"_dakera_content_date", "_dakera_lang"})
RESERVED_TAG = "dakera-curated"
MAX_EVENT_TIME = 10_000_000_000  # 2286-11-20, the contract's upper bound
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600


def _check_identifier(field: str, value: Any, pattern: re.Pattern[str], max_bytes: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"'{field}' must be a non-empty string")
    if len(value.encode("utf-8")) > max_bytes:
        raise InvalidInput(f"'{field}' is longer than {max_bytes} bytes")
    if not pattern.fullmatch(value):
        raise InvalidInput(
            f"'{field}' may hold only letters, digits and {_allowed(pattern)}, "
            "starting with a letter or digit"
        )
    return value


def _allowed(pattern: re.Pattern[str]) -> str:
    extras = {"_": "'_'", "\\-": "'-'", ".": "'.'", ":": "':'"}
    return ", ".join(text for token, text in extras.items() if token in pattern.pattern)


def check_agent_id(value: Any, field: str = "agent_id") -> str:
    """An agent id: pattern, ≤ 241 bytes, not starting with ``_dakera_``."""
    agent_id = _check_identifier(field, value, AGENT_ID_PATTERN, AGENT_ID_MAX_BYTES)
    return agent_id


def check_session_id(value: Any, field: str = "session_id") -> str:
    """A session id: pattern (colons allowed), ≤ 256 bytes."""
    return _check_identifier(field, value, SESSION_ID_PATTERN, SESSION_ID_MAX_BYTES)


def check_memory_id(value: Any, field: str = "id") -> str:
    """A client-supplied memory id: identifier pattern, not a reserved derived id."""
    memory_id = _check_identifier(field, value, MEMORY_ID_PATTERN, MEMORY_ID_MAX_BYTES)
    if RESERVED_DERIVED_ID.fullmatch(memory_id):
        raise InvalidInput(f"'{field}' uses the reserved form mem_s + 24 hex digits")
    return memory_id


def check_namespace_name(value: Any, field: str = "namespace") -> str:
    """A data namespace name: pattern, ≤ 128 bytes, no reserved prefix."""
    name = _check_identifier(field, value, NAMESPACE_PATTERN, NAMESPACE_MAX_BYTES)
    for prefix in ("system_", "internal_", "admin_"):
        if name.startswith(prefix):
            raise InvalidInput(f"'{field}' must not start with the reserved prefix '{prefix}'")
    return name


def check_importance(value: Any, field: str = "importance") -> float:
    """A number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"'{field}' must be a number between 0 and 1")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise InvalidInput(f"'{field}' must be between 0 and 1")
    return number


def check_tags(value: Any, field: str = "tags") -> list[str]:
    """At most 50 non-empty tags of at most 256 characters; the curated tag is reserved."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InvalidInput(f"'{field}' must be a list of strings")
    if len(value) > MAX_TAGS:
        raise InvalidInput(f"'{field}' has {len(value)} tags; at most {MAX_TAGS} are allowed")
    for tag in value:
        if not tag:
            raise InvalidInput(f"'{field}' contains an empty tag")
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"a tag in '{field}' is longer than {MAX_TAG_CHARS} characters")
        if tag == RESERVED_TAG:
            raise InvalidInput(f"the tag '{RESERVED_TAG}' is reserved")
    return list(dict.fromkeys(value))


def check_metadata(value: Any, field: str = "metadata") -> dict[str, Any] | None:
    """An object of at most 100 fields; ``_dakera_*`` keys are reserved (two exceptions)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"'{field}' must be an object")
    if len(value) > MAX_METADATA_FIELDS:
        raise InvalidInput(f"'{field}' has more than {MAX_METADATA_FIELDS} fields")
    for key in value:
        if key.startswith("_dakera_") and key not in ALLOWED_RESERVED_METADATA:
            raise InvalidInput(f"metadata key '{key}' is reserved")
    return dict(value)


def check_ttl(value: Any, field: str = "ttl_seconds") -> int | None:
    """A positive whole number of seconds, at most 100 years."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"'{field}' must be a positive whole number of seconds")
    if value > MAX_TTL_SECONDS:
        raise InvalidInput(f"'{field}' must be at most 100 years")
    return value


def parse_event_time(value: Any, field: str = "event_time") -> int | None:
    """Unix seconds (int or float) or an RFC 3339 string with offset → integer seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"'{field}' must be Unix seconds or an RFC 3339 time")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_rfc3339(value, field, require_offset=True)
    else:
        raise InvalidInput(f"'{field}' must be Unix seconds or an RFC 3339 time")
    if not 0 <= seconds <= MAX_EVENT_TIME:
        raise InvalidInput(f"'{field}' must lie between 1970 and 2286")
    return int(seconds)


def parse_iso_time(value: Any, field: str) -> float | None:
    """An ISO-8601 time (``Z``, offset, or naive = UTC) → Unix seconds."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' must be an ISO-8601 time string")
    return _parse_rfc3339(value, field, require_offset=False)


def _parse_rfc3339(value: str, field: str, *, require_offset: bool) -> float:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"'{field}' is not a valid ISO-8601 / RFC 3339 time") from None
    if parsed.tzinfo is None:
        if require_offset:
            raise InvalidInput(f"'{field}' needs a time zone offset (e.g. Z or +02:00)")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
