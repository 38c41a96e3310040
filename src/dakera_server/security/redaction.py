"""Secrets out of audit entries: secret-named JSON fields and presented keys, in bodies that
may be cut short.

Split from ``audit.py`` (which writes the entries) so each module stays small; ``audit`` re-exports
these names.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "REDACTED",
    "SECRET_FIELDS",
    "TRUNCATION_OVERHEAD",
    "redact",
    "redact_text",
    "render_body",
    "scrub",
]

REDACTED = "[REDACTED]"
SECRET_FIELDS = frozenset(
    {
        "key",
        "new_key",
        "old_key",
        "api_key",
        "apikey",
        "x-api-key",
        "root_api_key",
        "secret",
        "client_secret",
        "password",
        "passphrase",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "encryption_key",
    }
)


def redact(value: Any) -> Any:
    """A copy of a parsed JSON value with every secret-named field's value replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and k.lower() in SECRET_FIELDS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _string_end(text: str, start: int) -> int:
    """Index just past the JSON string opening at ``start`` (the end of a truncated text)."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    return len(text)


def _value_end(text: str, start: int) -> int:
    """Index just past the JSON value at ``start``, or the end of a truncated text."""
    if start >= len(text):
        return start
    if text[start] == '"':
        return _string_end(text, start)
    if text[start] in "{[":
        depth = 0
        index = start
        while index < len(text):
            char = text[index]
            if char == '"':
                index = _string_end(text, index)
                continue
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return len(text)
    index = start
    while index < len(text) and text[index] not in ",}] \t\r\n":
        index += 1
    return index


def redact_text(text: str) -> str:
    """Secret-named fields redacted in JSON text that may be cut short (no parse needed).

    Walks the text token by token, so a key is only ever recognised where JSON has keys (never
    inside a string), and the whole value of a secret field is dropped, object or array alike.
    """
    out: list[str] = []
    index = 0
    copied = 0
    while index < len(text):
        if text[index] != '"':
            index += 1
            continue
        end = _string_end(text, index)
        after = end
        while after < len(text) and text[after] in " \t\r\n":
            after += 1
        if after < len(text) and text[after] == ":":
            name = text[index + 1 : end - 1]
            value = after + 1
            while value < len(text) and text[value] in " \t\r\n":
                value += 1
            if name.lower() in SECRET_FIELDS:
                out.append(text[copied:value])
                out.append(f'"{REDACTED}"')
                index = copied = _value_end(text, value)
                continue
        index = end
    out.append(text[copied:])
    return "".join(out)


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with every occurrence of a presented secret replaced, in keys and strings."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


# What a truncated body adds around its text when serialised: the longest it can be is this
# wrapper with ``null`` for the size (a size of more than four digits takes text bytes instead).
TRUNCATION_OVERHEAD = len(orjson.dumps({"truncated": True, "size": None, "text": ""}))
_ESCAPED = {'"': 2, "\\": 2, "\n": 2, "\r": 2, "\t": 2, "\b": 2, "\f": 2}


def _json_prefix(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose JSON string form (quotes excluded) fits ``budget``.

    Quotes, backslashes and control characters grow when escaped, so the cut is measured on the
    escaped form: a body of quotes must not come out twice the configured size.
    """
    used = 0
    for index, char in enumerate(text):
        if char < " ":
            width = _ESCAPED.get(char, 6)
        elif char.isascii():
            width = _ESCAPED.get(char, 1)
        else:
            width = len(char.encode("utf-8", "surrogatepass"))
        if used + width > budget:
            return text[:index]
        used += width
    return text


def render_body(raw: bytes, complete: bool, limit: int, secrets: tuple[str, ...]) -> Any:
    """The loggable form of a body, secrets redacted: the JSON value itself when it fits in
    ``limit`` bytes, else ``{"truncated": true, "size": n, "text": first bytes}``.

    A truncated entry serialises to at most ``limit + TRUNCATION_OVERHEAD`` bytes whatever the
    body holds (``DAKERA_AUDIT_MAX_BODY_SIZE`` bounds the log line, not only the text)."""
    parsed: Any = None
    if complete:
        try:
            parsed = scrub(redact(orjson.loads(raw)), secrets)
        except orjson.JSONDecodeError:
            parsed = None
    if parsed is not None:
        text = orjson.dumps(parsed).decode()
    else:
        text = redact_text(raw.decode("utf-8", "replace"))
        text = scrub(text, secrets)
    if parsed is not None and len(text.encode("utf-8")) <= limit:
        return parsed
    if parsed is None and len(orjson.dumps(text)) - 2 <= limit:
        return text
    size = len(raw) if complete else None
    budget = max(0, limit - max(0, len(str(size)) - len("null")))
    return {"truncated": True, "size": size, "text": _json_prefix(text, budget)}
