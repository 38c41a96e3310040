"""Settings: one declared table, read from the environment once, validated, frozen.

This is the only module that reads ``os.environ`` (through ``Settings.from_env``). Each setting is
declared once in ``SETTINGS`` with its variable name, type, default and help; the README's
environment table is generated from it and a test fails when the two drift apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dakera_server.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "Settings", "environment_table"]

MIN_PASSPHRASE = 8
HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")  # a raw 256-bit key, used as is
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


def check_encryption_key(name: str, raw: str) -> str:
    """An encryption key is 64 hex characters or a passphrase of at least 8 characters."""
    if HEX_KEY.fullmatch(raw) or len(raw.strip()) >= MIN_PASSPHRASE:
        return raw
    raise ConfigError(
        f"{name} is too short: use a passphrase of at least {MIN_PASSPHRASE} characters or "
        "64 hex characters (openssl rand -hex 32)."
    )


def _choice_parser(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} has value {raw!r}: must be one of {', '.join(choices)}.")
        return value

    return parse


def _parse_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_redis_url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("redis://", "rediss://", "unix://", "redis+unix://")):
        raise ConfigError(
            f"{name} has value {raw!r}: not a Redis URL. Use redis://host:port/db "
            "(rediss:// for TLS, unix:///path for a socket)."
        )
    return value


def _parse_path_list(name: str, raw: str) -> tuple[str, ...]:
    paths = _parse_list(name, raw)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError(f"{name} has entry {path!r}: each path must start with '/'.")
    return paths


def _float_parser(minimum: float, maximum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} has value {raw!r}: not a number.") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} has value {raw!r}: must be between {minimum} and {maximum}.")
        return value

    return parse


def _parse_http_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme, _, rest = value.partition("://")
    if scheme not in ("http", "https") or not rest or any(c in rest for c in "?# "):
        raise ConfigError(f"{name} has value {raw!r}: not an http(s) URL. Use http://host:port.")
    return value


def _parse_header_value(name: str, raw: str) -> str:
    value = raw.strip()
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(
            f"{name} has value {raw!r}: a header value must be non-empty and on one line."
        )
    return value


def _parse_origins(name: str, raw: str) -> tuple[str, ...]:
    origins = _parse_list(name, raw)
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+/?", origin):
            raise ConfigError(
                f"{name} has entry {origin!r}: give origins as scheme://host[:port] "
                "(e.g. https://app.example.com), comma-separated, or * for any origin."
            )
    return origins


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
        "DAKERA_ENCRYPTION_KEY",
        "encryption_key",
        check_encryption_key,
        None,
        "Turns on AES-256-GCM encryption at rest: a passphrase of at least 8 characters "
        "(Argon2id, per-data-dir salt) or 64 hex characters used as the key.",
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
    Setting(
        "DAKERA_NUMERIC_THREADS",
        "numeric_threads",
        _int_parser(0, 64),
        1,
        "Threads numpy's BLAS may use per operation (embeddings, exact search); 0 = the "
        "library's default. 1 avoids oversubscription stalls on small or shared machines.",
    ),
    Setting(
        "DAKERA_EMBEDDING_THREADS",
        "embedding_threads",
        _int_parser(0, 64),
        0,
        "Threads one batch of built-in embeddings is spread over (batch store, re-embedding); "
        "0 = one per usable core. A single text always runs on its request's thread.",
    ),
    Setting(
        "DAKERA_GRPC_ENABLED",
        "grpc_enabled",
        _parse_bool,
        True,
        "Serve the gRPC API (`dakera.v1.VectorService`) beside REST, in the same process.",
    ),
    Setting(
        "DAKERA_GRPC_PORT",
        "grpc_port",
        _int_parser(0, 65535),
        50051,
        "gRPC port, bound on `DAKERA_HOST` (0 = any free port).",
    ),
    Setting(
        "RATE_LIMIT_RPS",
        "rate_limit_rps",
        _int_parser(0, 1_000_000),
        100,
        "Global rate limit: sustained requests per second for the whole server (0 = off).",
    ),
    Setting(
        "RATE_LIMIT_BURST",
        "rate_limit_burst",
        _int_parser(0, 1_000_000),
        50,
        "Global rate limit: extra requests allowed on top of one second's rate in a spike.",
    ),
    Setting(
        "DAKERA_REDIS_URL",
        "redis_url",
        _parse_redis_url,
        None,
        "Redis shared by all server processes for rate limits (local limits if unset or down).",
        secret=True,
    ),
    Setting(
        "DAKERA_AUDIT_ENABLED",
        "audit_enabled",
        _parse_bool,
        False,
        "Write one JSON line per HTTP request (and per business event) to the audit log.",
    ),
    Setting(
        "DAKERA_AUDIT_REQUEST_BODY",
        "audit_request_body",
        _parse_bool,
        False,
        "Include request bodies in audit entries (secrets redacted, truncated).",
    ),
    Setting(
        "DAKERA_AUDIT_RESPONSE_BODY",
        "audit_response_body",
        _parse_bool,
        False,
        "Include response bodies in audit entries (secrets redacted, truncated).",
    ),
    Setting(
        "DAKERA_AUDIT_MAX_BODY_SIZE",
        "audit_max_body_size",
        _int_parser(0, 16 * 1024 * 1024),
        4096,
        "Bodies longer than this many bytes are truncated in audit entries.",
    ),
    Setting(
        "DAKERA_AUDIT_EXCLUDE_PATHS",
        "audit_exclude_paths",
        _parse_path_list,
        ("/health", "/metrics"),
        "Comma-separated paths not audited (each also covers its sub-paths).",
    ),
    Setting(
        "DAKERA_AUDIT_LOG_PATH",
        "audit_log_path",
        _parse_path,
        None,
        "File the audit log is appended to as JSON lines (stdout when unset).",
    ),
    Setting(
        "DAKERA_AUTOPILOT_ENABLED",
        "autopilot_enabled",
        _parse_bool,
        True,
        "Initial AutoPilot switch (background dedup/consolidation) until changed at runtime.",
    ),
    Setting(
        "DAKERA_DECAY_INTERVAL_SECS",
        "decay_interval_secs",
        _int_parser(0),
        3600,
        "Seconds between decay cycles that persist decayed importance (0 = only on demand).",
    ),
    Setting(
        "DAKERA_TTL_SWEEP_INTERVAL_SECS",
        "ttl_sweep_interval_secs",
        _int_parser(0),
        60,
        "Seconds between sweeps that purge expired memories and stale trash (0 = on demand).",
    ),
    Setting(
        "DAKERA_BACKGROUND_CPU_PERCENT",
        "background_cpu_percent",
        _int_parser(1, 100),
        25,
        "Share of one core a background lifecycle pass may use; it sleeps between batches.",
    ),
    Setting(
        "DAKERA_GRAPH_SIMILARITY_THRESHOLD",
        "graph_similarity_threshold",
        _float_parser(0.0, 1.0),
        0.85,
        "Cosine similarity from which a stored memory gets a `related_to` edge to an existing one.",
    ),
    Setting(
        "DAKERA_ODE_URL",
        "ode_url",
        _parse_http_url,
        None,
        "Base URL of the ODE/GLiNER entity sidecar (`POST /ode/extract`), for namespaces whose "
        "extractor is `gliner`.",
    ),
    Setting(
        "DAKERA_ODE_ALLOW_PRIVATE",
        "ode_allow_private",
        _parse_bool,
        False,
        "Let entity sidecar URLs point at loopback or private addresses (SSRF guard off for them).",
    ),
    Setting(
        "DAKERA_MAX_BODY_SIZE",
        "max_body_size",
        _int_parser(1),
        10_485_760,
        "Largest request body in bytes; larger bodies get 413 before they are read.",
    ),
    Setting(
        "DAKERA_SECURITY_PRESET",
        "security_preset",
        _choice_parser("default", "permissive", "strict"),
        "default",
        "Security-header preset: `default` (CSP `default-src 'none'; frame-ancestors 'none'`, "
        "HSTS), `permissive` (no CSP, no HSTS) or `strict` (restrictive CSP, HSTS preload).",
    ),
    Setting(
        "DAKERA_HSTS_ENABLED",
        "hsts_enabled",
        _parse_bool,
        None,
        "Send `Strict-Transport-Security` (unset: as the preset says; on for default, strict).",
    ),
    Setting(
        "DAKERA_HSTS_MAX_AGE",
        "hsts_max_age",
        _int_parser(0),
        None,
        "HSTS `max-age` in seconds (unset: 31536000, or 63072000 with the strict preset).",
    ),
    Setting(
        "DAKERA_FRAME_OPTIONS",
        "frame_options",
        _parse_header_value,
        "DENY",
        "`X-Frame-Options` value: `DENY`, `SAMEORIGIN` or a custom value.",
    ),
    Setting(
        "DAKERA_CSP_ENABLED",
        "csp_enabled",
        _parse_bool,
        None,
        "Send `Content-Security-Policy` (unset: as the preset says).",
    ),
    Setting(
        "DAKERA_CSP_DIRECTIVES",
        "csp_directives",
        _parse_header_value,
        None,
        "Custom `Content-Security-Policy` value replacing the preset's directives.",
    ),
    Setting(
        "DAKERA_CORS_ORIGINS",
        "cors_origins",
        _parse_origins,
        (),
        "Origins allowed to call the API from a browser, comma-separated, or `*` (none if unset).",
    ),
    Setting(
        "DAKERA_CORS_CREDENTIALS",
        "cors_credentials",
        _parse_bool,
        False,
        "Send `Access-Control-Allow-Credentials: true` to allowed origins (never with `*`).",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Validated, immutable configuration. Build it with ``from_env`` or keyword arguments."""

    host: str = "127.0.0.1"
    port: int = 3300
    data_dir: Path = Path("dakera-data")
    auth_enabled: bool = True
    root_api_key: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    embedding_provider: str = "builtin"
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: str | None = field(default=None, repr=False)
    embedding_dimension: int | None = None
    max_memory_content_bytes: int = 100_000
    session_idle_timeout_secs: int = 14_400
    exact_search_threshold: int = 10_000
    numeric_threads: int = 1
    embedding_threads: int = 0
    grpc_enabled: bool = True
    grpc_port: int = 50051
    rate_limit_rps: int = 100
    rate_limit_burst: int = 50
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    audit_enabled: bool = False
    audit_request_body: bool = False
    audit_response_body: bool = False
    audit_max_body_size: int = 4096
    audit_exclude_paths: tuple[str, ...] = ("/health", "/metrics")
    audit_log_path: Path | None = None
    autopilot_enabled: bool = True
    decay_interval_secs: int = 3600
    ttl_sweep_interval_secs: int = 60
    background_cpu_percent: int = 25
    graph_similarity_threshold: float = 0.85
    ode_url: str | None = None
    ode_allow_private: bool = False
    max_body_size: int = 10_485_760
    security_preset: str = "default"
    hsts_enabled: bool | None = None
    hsts_max_age: int | None = None
    frame_options: str = "DENY"
    csp_enabled: bool | None = None
    csp_directives: str | None = None
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
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
        if "*" in self.cors_origins and self.cors_credentials:
            raise ConfigError(
                "DAKERA_CORS_ORIGINS=* with DAKERA_CORS_CREDENTIALS=true would let every web "
                "site make credentialed requests as your users: list the trusted origins in "
                "DAKERA_CORS_ORIGINS, or set DAKERA_CORS_CREDENTIALS=false."
            )
        preload_age = self.hsts_max_age is not None and self.hsts_max_age < 31_536_000
        if self.security_preset == "strict" and self.hsts_enabled is not False and preload_age:
            raise ConfigError(
                f"DAKERA_HSTS_MAX_AGE is {self.hsts_max_age}, but the strict preset sends HSTS "
                "with preload, which browsers accept only with max-age of at least 31536000: "
                "raise it or unset it."
            )

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
