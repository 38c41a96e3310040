"""Structured fields: which JSON keys, query and path parameters carry ids, names, tags or URLs,
and the allow-list each one must match.

An allow-list refuses the seven injection categories by construction: an agent id made of
letters, digits, ``_``, ``-`` and ``.`` cannot hold a quote, a ``$``, a shell metacharacter, a
slash, an angle bracket, a URL or a line break. Free text (everything not named here) goes to
the detectors of ``security/inspection/detectors.py`` instead. The patterns and limits are the wire
contract's (``engine/rules.py``), so the layer and the engine agree on what is valid; the engine
still applies its own checks (reserved prefixes, the curated tag) on every write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dakera_server.engine import rules
from dakera_server.engine.vectors.filters import FIELD_OPERATORS, LOGICAL_OPERATORS
from dakera_server.security.inspection.ssrf import url_refusal

__all__ = [
    "FILTER_KEYS",
    "FILTER_OPERATORS",
    "KEY_PATTERN",
    "METADATA_KEYS",
    "Kind",
    "key_is_command",
    "key_refusal",
    "kind_of_key",
    "kind_of_list",
    "kind_of_param",
]

AGENT_NAMESPACE_PREFIX = "_dakera_agent_"
AGENT_NAMESPACE_MAX_BYTES = 255
INTERNAL_NAMESPACE = re.compile(r"^_dakera_[a-z_]+$")
GRANT_PATTERN = re.compile(r"^(?:\*|[A-Za-z0-9_][A-Za-z0-9_.:\-]*\*?)$")
TAG_PATTERN = re.compile(r"^[#@]?\w[\w.:/@#+\-]*$")
SECRET_PATTERN = re.compile(r"^[\x21-\x7e]{1,512}$")
# Object keys anywhere: a word character first, then word characters, single spaces and a
# few separators; no option flags (" -a"), root paths (" /etc"), comments ("--") or "..".
KEY_PATTERN = re.compile(r"^\w[\w .:/@#+\-]*$")
KEY_FORBIDDEN = ("..", "//", " /", "/ ", " -", "--", "@@", "  ")
# Keys may hold single spaces ("Header 1", "Last Edited": loaders name keys after headings and
# columns), so "<command> <argument>" fits the pattern above; these command lines are refused.
# Only commands that never start an everyday label, with any argument; commands that are also
# English words only with the argument shape the command takes ("sleep 10", not "sleep hours";
# "net view", not "net income"). Lower case only: shells are case-sensitive, labels are not
# ("Which Plan" passes).
KEY_COMMAND = re.compile(
    r"(?:which|whoami|uname|hostname|netsh|nslookup|wget|curl|ncat|netcat|socat|telnet"
    r"|ifconfig|ipconfig|netstat|systeminfo|tasklist|taskkill|certutil|wmic|powershell|pwsh"
    r"|chmod|chown|sudo|nohup|crontab|rm) \S"
    r"|(?:sleep|usleep|timeout|ping|nc) [\d.]"
    r"|(?:ping|dig|host) \S*\.[a-z]"
    r"|(?:bash|sh|zsh|ksh|perl|php|python[23]?|ruby|node) \S+\.(?:sh|pl|php|py|rb|js)\b"
    r"|net (?:user|users|view|share|localgroup|group|use|start|stop|session|accounts|config"
    r"|time|file)\b"
    r"|reg (?:query|add|delete|save|export)\b"
)
MAX_KEY_CHARS = 256
MAX_NAME_CHARS = 128  # security.md: namespace name and API key name
FILTER_OPERATORS = frozenset((*LOGICAL_OPERATORS, *FIELD_OPERATORS))
METADATA_KEYS = frozenset({"metadata"})
FILTER_KEYS = frozenset({"filter", "filters"})


@dataclass(frozen=True)
class Kind:
    """A structured field kind: its name in messages, and what a valid value looks like."""

    label: str
    rule: str
    pattern: re.Pattern[str] | None = None
    max_bytes: int = 256
    max_chars: int | None = None

    def refusal(self, value: str) -> str | None:
        """Why ``value`` is not a valid ``label`` (a message that never echoes it), or None."""
        if self is URL:
            reason = url_refusal(value)
            return None if reason is None else f"not an allowed URL: {reason}"
        if self is NAMESPACE:
            return _namespace_refusal(value)
        if not value:
            return f"an empty {self.label}"
        if self.max_chars is not None and len(value) > self.max_chars:
            return f"longer than {self.max_chars} characters"
        if len(value.encode("utf-8")) > self.max_bytes:
            return f"longer than {self.max_bytes} bytes"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"not a valid {self.label} ({self.rule})"
        if self is TAG and (".." in value or "//" in value):
            return f"not a valid {self.label} ('..' and '//' are not allowed)"
        return None


ID_RULE = "letters, digits, '_', '-', ':' and '.', starting with a letter or digit"
AGENT_ID = Kind(
    "agent id",
    "letters, digits, '_', '-' and '.', starting with a letter or digit",
    rules.AGENT_ID_PATTERN,
    rules.AGENT_ID_MAX_BYTES,
)
SESSION_ID = Kind("session id", ID_RULE, rules.SESSION_ID_PATTERN, rules.SESSION_ID_MAX_BYTES)
RECORD_ID = Kind("id", ID_RULE, rules.MEMORY_ID_PATTERN, rules.MEMORY_ID_MAX_BYTES)
NAMESPACE = Kind(
    "namespace name",
    "letters, digits, '_' and '-', starting with a letter or digit, at most 128 bytes",
    rules.NAMESPACE_PATTERN,
    rules.NAMESPACE_MAX_BYTES,
)
GRANT = Kind(
    "namespace grant",
    "a namespace name, a 'prefix*' pattern or '*'",
    GRANT_PATTERN,
    AGENT_NAMESPACE_MAX_BYTES,
)
TAG = Kind(
    "tag",
    "letters, digits and '_-.:/@#+', no spaces",
    TAG_PATTERN,
    max_bytes=4 * rules.MAX_TAG_CHARS,
    max_chars=rules.MAX_TAG_CHARS,
)
URL = Kind("URL", "a public http or https URL")
SECRET = Kind("key", "printable characters without spaces", SECRET_PATTERN, 512)
NAME = Kind("name", f"at most {MAX_NAME_CHARS} characters", None, 4 * 128, MAX_NAME_CHARS)

ID_KEYS = (
    "id", "memory_id", "source_id", "target_id", "root_id", "context_of", "from_id", "to_id",
    "parent_id", "document_id", "job_id", "backup_id", "restore_id", "record_id", "vector_id",
    "attachment_ref", "key_id", "entity_id", "edge_id", "memory_a", "memory_b",
)  # fmt: skip
AGENT_KEYS = ("agent_id", "source_agent_id", "target_agent_id", "from_agent_id", "to_agent_id")
KEY_KINDS: dict[str, Kind] = {
    **dict.fromkeys(AGENT_KEYS, AGENT_ID),
    **dict.fromkeys(("namespace", "source_namespace", "target_namespace"), NAMESPACE),
    **dict.fromkeys(ID_KEYS, RECORD_ID),
    "session_id": SESSION_ID,
    "tag": TAG,
    "api_key": SECRET,
}
LIST_KINDS: dict[str, Kind] = {
    "agent_ids": AGENT_ID,
    "session_ids": SESSION_ID,
    **dict.fromkeys(
        ("ids", "memory_ids", "vector_ids", "document_ids", "key_ids", "record_ids"), RECORD_ID
    ),
    "tags": TAG,
    **dict.fromkeys(("namespaces", "extra_namespaces"), GRANT),
}
PARAM_KINDS: dict[str, Kind] = {**KEY_KINDS, "ns": NAMESPACE}
URL_SUFFIXES = ("_url", "_uri", "_endpoint", "_webhook")
URL_KEYS = frozenset({"url", "uri", "webhook", "endpoint", "callback"})


def kind_of_key(key: str) -> Kind | None:
    """The kind of a string stored under ``key`` (None: free text)."""
    kind = KEY_KINDS.get(key)
    if kind is not None:
        return kind
    if key in URL_KEYS or key.endswith(URL_SUFFIXES):
        return URL
    return None


def kind_of_list(key: str) -> Kind | None:
    """The kind of each string in a list stored under ``key`` (None: use ``kind_of_key``)."""
    return LIST_KINDS.get(key)


def kind_of_param(name: str) -> Kind:
    """The kind of a path parameter; unknown names are ids (every path parameter is one)."""
    return PARAM_KINDS.get(name, RECORD_ID)


def key_refusal(key: str) -> str | None:
    """Why an object key is not allowed (outside filter objects), or None."""
    if not key:
        return "an empty key"
    if len(key) > MAX_KEY_CHARS:
        return f"a key longer than {MAX_KEY_CHARS} characters"
    if not KEY_PATTERN.fullmatch(key) or any(bad in key for bad in KEY_FORBIDDEN):
        return "a key with characters outside letters, digits, spaces and '_-.:/@#+'"
    return None


def key_is_command(key: str) -> bool:
    """True when an object key (already allowed by ``key_refusal``) reads as a shell command
    line: ``which curl``, ``netsh firewall set opmode disable``, ``sleep 5``, ``net view``."""
    return " " in key and KEY_COMMAND.match(key) is not None


def _namespace_refusal(value: str) -> str | None:
    if value.endswith("*"):  # a grant pattern, as key creation accepts in 'namespace'
        return GRANT.refusal(value)
    if value.startswith(AGENT_NAMESPACE_PREFIX):
        agent = value[len(AGENT_NAMESPACE_PREFIX) :]
        if len(value.encode("utf-8")) > AGENT_NAMESPACE_MAX_BYTES:
            return f"longer than {AGENT_NAMESPACE_MAX_BYTES} bytes"
        return AGENT_ID.refusal(agent)
    if INTERNAL_NAMESPACE.fullmatch(value):
        return None
    if not value:
        return "an empty namespace name"
    if len(value.encode("utf-8")) > rules.NAMESPACE_MAX_BYTES:
        return f"longer than {rules.NAMESPACE_MAX_BYTES} bytes"
    if not rules.NAMESPACE_PATTERN.fullmatch(value):
        return f"not a valid namespace name ({NAMESPACE.rule})"
    return None
