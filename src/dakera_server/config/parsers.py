"""Parsers for environment values: each turns one raw string into a typed value or raises.

Every parser takes the variable's name and its raw text, so the ``ConfigError`` it raises names
the variable, the value and the fix (STYLE.md habit 4).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

from dakera_server.errors import ConfigError

__all__ = [
    "HEX_KEY",
    "check_encryption_key",
    "choice_parser",
    "float_parser",
    "int_parser",
    "parse_bool",
    "parse_header_value",
    "parse_http_url",
    "parse_list",
    "parse_networks",
    "parse_origins",
    "parse_path",
    "parse_path_list",
    "parse_redis_url",
    "parse_storage_url",
    "parse_str",
]

MIN_PASSPHRASE = 8
HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")  # a raw 256-bit key, used as is
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} has value {raw!r}: not a valid boolean. Use true or false.")


def int_parser(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} has value {raw!r}: not a whole number.") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ConfigError(f"{name} has value {raw!r}: must be at least {minimum}{upper}.")
        return value

    return parse


def parse_str(name: str, raw: str) -> str:
    return raw


def parse_path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise ConfigError(f"{name} is empty: give a directory path.")
    return Path(raw).expanduser()


def check_encryption_key(name: str, raw: str) -> str:
    """An encryption key is 64 hex characters or a passphrase of at least 8 characters."""
    if HEX_KEY.fullmatch(raw) or len(raw.strip()) >= MIN_PASSPHRASE:
        return raw
    raise ConfigError(
        f"{name} is too short: use a passphrase of at least {MIN_PASSPHRASE} characters or "
        "64 hex characters (openssl rand -hex 32)."
    )


def choice_parser(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} has value {raw!r}: must be one of {', '.join(choices)}.")
        return value

    return parse


def parse_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_redis_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("redis://", "rediss://", "unix://", "redis+unix://")):
        raise ConfigError(
            f"{name} has value {raw!r}: not a Redis URL. Use redis://host:port/db "
            "(rediss:// for TLS, unix:///path for a socket)."
        )
    return value


def parse_storage_url(name: str, raw: str) -> str:
    """A ``postgresql://`` (or ``postgres://``) URL. The value is never echoed in the error: it
    may hold a password."""
    value = raw.strip()
    scheme, sep, rest = value.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep or any(c.isspace() for c in rest):
        raise ConfigError(
            f"{name} is not a PostgreSQL URL (the value is not shown: it may hold a password). "
            "Use postgresql://user:password@host:5432/dbname, or unset it for the embedded "
            "SQLite store."
        )
    return value


def parse_path_list(name: str, raw: str) -> tuple[str, ...]:
    paths = parse_list(name, raw)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError(f"{name} has entry {path!r}: each path must start with '/'.")
    return paths


def float_parser(minimum: float, maximum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} has value {raw!r}: not a number.") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} has value {raw!r}: must be between {minimum} and {maximum}.")
        return value

    return parse


def parse_http_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme, _, rest = value.partition("://")
    if scheme not in ("http", "https") or not rest or any(c in rest for c in "?# "):
        raise ConfigError(f"{name} has value {raw!r}: not an http(s) URL. Use http://host:port.")
    return value


def parse_header_value(name: str, raw: str) -> str:
    value = raw.strip()
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(
            f"{name} has value {raw!r}: a header value must be non-empty and on one line."
        )
    return value


def parse_origins(name: str, raw: str) -> tuple[str, ...]:
    origins = parse_list(name, raw)
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+/?", origin):
            raise ConfigError(
                f"{name} has entry {origin!r}: give origins as scheme://host[:port] "
                "(e.g. https://app.example.com), comma-separated, or * for any origin."
            )
    return origins


def parse_networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, each normalised (``10.0.0.0/8``)."""
    networks = []
    for item in parse_list(name, raw):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name} has {item!r}, which is not an IP address or CIDR network: list the "
                "addresses of your reverse proxies, e.g. 127.0.0.1,10.0.0.0/8."
            ) from None
    return tuple(networks)
