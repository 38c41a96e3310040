"""Settings: one declared table, read from the environment once, validated, frozen.

This is the only module that reads ``os.environ`` (through ``Settings.from_env``). Each setting is
declared once in ``SETTINGS`` with its variable name, type, default and help; the README's
environment table is generated from it and a test fails when the two drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dakera_server.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "environment_table"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} has value {raw!r}: not a valid boolean. Use true or false.")


def _int_parser(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
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


def _parse_str(name: str, raw: str) -> str:
    return raw


def _parse_path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise ConfigError(f"{name} is empty: give a directory path.")
    return Path(raw).expanduser()


def _choice_parser(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} has value {raw!r}: must be one of {', '.join(choices)}.")
        return value

    return parse


def _parse_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field on ``Settings``, parser, default and help line."""

    env: str
    attr: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DAKERA_HOST", "host", _parse_str, "127.0.0.1", "Address the REST API binds to."),
    Setting("DAKERA_PORT", "port", _int_parser(0, 65535), 3300, "REST API port."),
    Setting(
        "DAKERA_DATA_DIR",
        "data_dir",
        _parse_path,
        Path("dakera-data"),
        "Directory holding all persistent state (SQLite store, index snapshots).",
    ),
    Setting(
        "DAKERA_AUTH_ENABLED",
        "auth_enabled",
        _parse_bool,
        True,
        "Require an API key on every non-health route.",
    ),
    Setting(
        "DAKERA_ROOT_API_KEY",
        "root_api_key",
        _parse_str,
        None,
        "Bootstrap super_admin key, accepted as `Authorization: Bearer` or `X-API-Key`.",
        secret=True,
    ),
    Setting(
        "DAKERA_ALLOWED_HOSTS",
        "allowed_hosts",
        _parse_list,
        (),
        "With auth off, Host names served besides localhost (comma-separated).",
    ),
    Setting(
        "DAKERA_LOG_LEVEL",
        "log_level",
        _choice_parser("debug", "info", "warning", "error"),
        "info",
        "Server log level.",
    ),
    Setting(
        "DAKERA_EMBEDDING_PROVIDER",
        "embedding_provider",
        _choice_parser("builtin", "openai"),
        "builtin",
        "`builtin` (all-MiniLM-L6-v2 on numpy, offline) or `openai` (an OpenAI-compatible "
        "`/v1/embeddings` endpoint such as Ollama, vLLM or TEI).",
    ),
    Setting(
        "DAKERA_EMBEDDING_URL",
        "embedding_url",
        _parse_str,
        None,
        "Base URL of the OpenAI-compatible embedding endpoint (provider `openai`).",
    ),
    Setting(
        "DAKERA_EMBEDDING_MODEL",
        "embedding_model",
        _parse_str,
        None,
        "Model name sent to the OpenAI-compatible endpoint (provider `openai`).",
    ),
    Setting(
        "DAKERA_EMBEDDING_API_KEY",
        "embedding_api_key",
        _parse_str,
        None,
        "Bearer token for the OpenAI-compatible endpoint, if it needs one.",
        secret=True,
    ),
    Setting(
        "DAKERA_EMBEDDING_DIMENSION",
        "embedding_dimension",
        _int_parser(1, 65536),
        None,
        "Dimension of the OpenAI-compatible model's vectors (provider `openai`).",
    ),
    Setting(
        "DAKERA_MAX_MEMORY_CONTENT_BYTES",
        "max_memory_content_bytes",
        _int_parser(1),
        100_000,
        "Largest memory content (and session summary) in UTF-8 bytes.",
    ),
    Setting(
        "DAKERA_SESSION_IDLE_TIMEOUT_SECS",
        "session_idle_timeout_secs",
        _int_parser(0, 2_592_000),
        14_400,
        "Seconds without activity after which a session counts as ended (0 = never).",
    ),
    Setting(
        "DAKERA_EXACT_SEARCH_THRESHOLD",
        "exact_search_threshold",
        _int_parser(0),
        10_000,
        "Below this many vectors an index searches exactly (numpy); above it, HNSW.",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Validated, immutable configuration. Build it with ``from_env`` or keyword arguments."""

    host: str = "127.0.0.1"
    port: int = 3300
    data_dir: Path = Path("dakera-data")
    auth_enabled: bool = True
    root_api_key: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    embedding_provider: str = "builtin"
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: str | None = None
    embedding_dimension: int | None = None
    max_memory_content_bytes: int = 100_000
    session_idle_timeout_secs: int = 14_400
    exact_search_threshold: int = 10_000
    # Not from the environment: tests pin the clock to make decay and TTL deterministic.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.embedding_provider == "openai":
            missing = [
                name
                for name, value in (
                    ("DAKERA_EMBEDDING_URL", self.embedding_url),
                    ("DAKERA_EMBEDDING_MODEL", self.embedding_model),
                    ("DAKERA_EMBEDDING_DIMENSION", self.embedding_dimension),
                )
                if not value
            ]
            if missing:
                raise ConfigError(
                    "DAKERA_EMBEDDING_PROVIDER is 'openai' but "
                    + ", ".join(missing)
                    + " not set: set them or use DAKERA_EMBEDDING_PROVIDER=builtin."
                )
        if self.root_api_key is not None and not self.root_api_key.strip():
            raise ConfigError("DAKERA_ROOT_API_KEY is set but empty: unset it or give a key.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every declared variable; raise ``ConfigError`` naming the first bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None or (raw == "" and setting.default is None):
                continue
            values[setting.attr] = setting.parse(setting.env, raw)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)


def environment_table() -> str:
    """The README's environment table, generated from ``SETTINGS``."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "(unset)" if setting.default is None else f"`{setting.default}`"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)
