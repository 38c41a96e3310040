"""``Settings``: the validated, frozen configuration, and the one reader of ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dakera_server.config.table import SETTINGS
from dakera_server.errors import ConfigError

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Validated, immutable configuration. Build it with ``from_env`` or keyword arguments."""

    host: str = "127.0.0.1"
    port: int = 3300
    data_dir: Path = Path("dakera-data")
    storage_url: str | None = field(default=None, repr=False)  # may carry a password
    node_id: str | None = None
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
    embedding_passes: int = 1
    max_concurrent_requests: int = 64
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
    mcp_enabled: bool = True
    mcp_read_only: bool = False
    mcp_max_content_chars: int = 1000
    mcp_api_key: str | None = field(default=None, repr=False)
    max_body_size: int = 10_485_760
    max_upload_size: int = 1_073_741_824
    backup_dir: Path | None = None
    security_preset: str = "default"
    hsts_enabled: bool | None = None
    hsts_max_age: int | None = None
    frame_options: str = "DENY"
    csp_enabled: bool | None = None
    csp_directives: str | None = None
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
    console_enabled: bool = True
    trusted_proxies: tuple[str, ...] = ()
    refuse_root: bool = False
    attachments_enabled: bool = False
    max_attachment_bytes: int = 26_214_400
    documents_enabled: bool = False
    document_chunk_tokens: int = 400
    document_chunk_overlap_tokens: int = 50
    document_max_pages: int = 2000
    document_max_text_bytes: int = 20_000_000
    document_max_chunks: int = 5000
    transcription_url: str | None = None
    transcription_model: str = "whisper-1"
    transcription_api_key: str | None = field(default=None, repr=False)
    vision_url: str | None = None
    vision_model: str = "gpt-4o-mini"
    vision_api_key: str | None = field(default=None, repr=False)
    media_allow_private: bool = False
    records_enabled: bool = False
    record_max_vectors: int = 1024
    record_max_bytes: int = 4_194_304
    metrics_snapshot_secs: int = 60
    slow_query_threshold_ms: int = 500
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
        named: dict[str, str] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None or (raw == "" and setting.default is None):
                continue
            value = setting.parse(setting.env, raw)
            # Two names for one setting (ours and the SDK's): both may be set, only alike.
            if setting.attr in values and values[setting.attr] != value:
                raise ConfigError(
                    f"{named[setting.attr]} and {setting.env} name the same setting but differ: "
                    "set only one of them."
                )
            values[setting.attr] = value
            named[setting.attr] = setting.env
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)
