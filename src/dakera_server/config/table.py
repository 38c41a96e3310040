"""The settings table: every environment variable declared once, with its parser and help.

The README's environment table is generated from ``SETTINGS`` (``environment_table``) and a test
fails when the two drift apart; ``Settings.from_env`` reads exactly these variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dakera_server.config.parsers import (
    check_encryption_key,
    choice_parser,
    float_parser,
    int_parser,
    parse_bool,
    parse_header_value,
    parse_http_url,
    parse_list,
    parse_networks,
    parse_origins,
    parse_path,
    parse_path_list,
    parse_redis_url,
    parse_str,
)

__all__ = ["SETTINGS", "Setting", "environment_table"]


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
    Setting("DAKERA_HOST", "host", parse_str, "127.0.0.1", "Address the REST API binds to."),
    Setting("DAKERA_PORT", "port", int_parser(0, 65535), 3300, "REST API port."),
    Setting(
        "DAKERA_DATA_DIR",
        "data_dir",
        parse_path,
        Path("dakera-data"),
        "Directory holding all persistent state (SQLite store, index snapshots).",
    ),
    Setting(
        "DAKERA_AUTH_ENABLED",
        "auth_enabled",
        parse_bool,
        True,
        "Require an API key on every non-health route.",
    ),
    Setting(
        "DAKERA_ROOT_API_KEY",
        "root_api_key",
        parse_str,
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
        parse_list,
        (),
        "With auth off, Host names served besides localhost (comma-separated).",
    ),
    Setting(
        "DAKERA_LOG_LEVEL",
        "log_level",
        choice_parser("debug", "info", "warning", "error"),
        "info",
        "Server log level.",
    ),
    Setting(
        "DAKERA_EMBEDDING_PROVIDER",
        "embedding_provider",
        choice_parser("builtin", "openai"),
        "builtin",
        "`builtin` (all-MiniLM-L6-v2 on numpy, offline) or `openai` (an OpenAI-compatible "
        "`/v1/embeddings` endpoint such as Ollama, vLLM or TEI).",
    ),
    Setting(
        "DAKERA_EMBEDDING_URL",
        "embedding_url",
        parse_str,
        None,
        "Base URL of the OpenAI-compatible embedding endpoint (provider `openai`).",
    ),
    Setting(
        "DAKERA_EMBEDDING_MODEL",
        "embedding_model",
        parse_str,
        None,
        "Model name sent to the OpenAI-compatible endpoint (provider `openai`).",
    ),
    Setting(
        "DAKERA_EMBEDDING_API_KEY",
        "embedding_api_key",
        parse_str,
        None,
        "Bearer token for the OpenAI-compatible endpoint, if it needs one.",
        secret=True,
    ),
    Setting(
        "DAKERA_EMBEDDING_DIMENSION",
        "embedding_dimension",
        int_parser(1, 65536),
        None,
        "Dimension of the OpenAI-compatible model's vectors (provider `openai`).",
    ),
    Setting(
        "DAKERA_MAX_MEMORY_CONTENT_BYTES",
        "max_memory_content_bytes",
        int_parser(1),
        100_000,
        "Largest memory content (and session summary) in UTF-8 bytes.",
    ),
    Setting(
        "DAKERA_SESSION_IDLE_TIMEOUT_SECS",
        "session_idle_timeout_secs",
        int_parser(0, 2_592_000),
        14_400,
        "Seconds without activity after which a session counts as ended (0 = never).",
    ),
    Setting(
        "DAKERA_EXACT_SEARCH_THRESHOLD",
        "exact_search_threshold",
        int_parser(0),
        10_000,
        "Below this many vectors an index searches exactly (numpy); above it, HNSW.",
    ),
    Setting(
        "DAKERA_NUMERIC_THREADS",
        "numeric_threads",
        int_parser(0, 64),
        1,
        "Threads numpy's BLAS may use per operation (embeddings, exact search); 0 = the "
        "library's default. 1 avoids oversubscription stalls on small or shared machines.",
    ),
    Setting(
        "DAKERA_EMBEDDING_THREADS",
        "embedding_threads",
        int_parser(0, 64),
        0,
        "Threads one batch of built-in embeddings is spread over (batch store, re-embedding); "
        "0 = one per usable core. A single text always runs on its request's thread.",
    ),
    Setting(
        "DAKERA_EMBEDDING_PASSES",
        "embedding_passes",
        int_parser(0, 64),
        1,
        "Embedding passes run at once for single texts (recall queries, single stores); texts "
        "arriving while they run share the next pass (0 = every request embeds alone).",
    ),
    Setting(
        "DAKERA_MAX_CONCURRENT_REQUESTS",
        "max_concurrent_requests",
        int_parser(0, 100_000),
        64,
        "Requests in progress at once (health probes aside); one more is answered 503 with "
        "`Retry-After: 1` at once instead of queueing (0 = no limit).",
    ),
    Setting(
        "DAKERA_GRPC_ENABLED",
        "grpc_enabled",
        parse_bool,
        True,
        "Serve the gRPC API (`dakera.v1.VectorService`) beside REST, in the same process.",
    ),
    Setting(
        "DAKERA_GRPC_PORT",
        "grpc_port",
        int_parser(0, 65535),
        50051,
        "gRPC port, bound on `DAKERA_HOST` (0 = any free port).",
    ),
    Setting(
        "RATE_LIMIT_RPS",
        "rate_limit_rps",
        int_parser(0, 1_000_000),
        100,
        "Global rate limit: sustained requests per second for the whole server (0 = off).",
    ),
    Setting(
        "RATE_LIMIT_BURST",
        "rate_limit_burst",
        int_parser(0, 1_000_000),
        50,
        "Global rate limit: extra requests allowed on top of one second's rate in a spike.",
    ),
    Setting(
        "DAKERA_REDIS_URL",
        "redis_url",
        parse_redis_url,
        None,
        "Redis shared by all server processes for rate limits (local limits if unset or down).",
        secret=True,
    ),
    Setting(
        "DAKERA_AUDIT_ENABLED",
        "audit_enabled",
        parse_bool,
        False,
        "Write one JSON line per HTTP request (and per business event) to the audit log.",
    ),
    Setting(
        "DAKERA_AUDIT_REQUEST_BODY",
        "audit_request_body",
        parse_bool,
        False,
        "Include request bodies in audit entries (secrets redacted, truncated).",
    ),
    Setting(
        "DAKERA_AUDIT_RESPONSE_BODY",
        "audit_response_body",
        parse_bool,
        False,
        "Include response bodies in audit entries (secrets redacted, truncated).",
    ),
    Setting(
        "DAKERA_AUDIT_MAX_BODY_SIZE",
        "audit_max_body_size",
        int_parser(0, 16 * 1024 * 1024),
        4096,
        "Bodies longer than this many bytes are truncated in audit entries.",
    ),
    Setting(
        "DAKERA_AUDIT_EXCLUDE_PATHS",
        "audit_exclude_paths",
        parse_path_list,
        ("/health", "/metrics"),
        "Comma-separated paths not audited (each also covers its sub-paths).",
    ),
    Setting(
        "DAKERA_AUDIT_LOG_PATH",
        "audit_log_path",
        parse_path,
        None,
        "File the audit log is appended to as JSON lines (stdout when unset).",
    ),
    Setting(
        "DAKERA_AUTOPILOT_ENABLED",
        "autopilot_enabled",
        parse_bool,
        True,
        "Initial AutoPilot switch (background dedup/consolidation) until changed at runtime.",
    ),
    Setting(
        "DAKERA_DECAY_INTERVAL_SECS",
        "decay_interval_secs",
        int_parser(0),
        3600,
        "Seconds between decay cycles that persist decayed importance (0 = only on demand).",
    ),
    Setting(
        "DAKERA_TTL_SWEEP_INTERVAL_SECS",
        "ttl_sweep_interval_secs",
        int_parser(0),
        60,
        "Seconds between sweeps that purge expired memories and stale trash (0 = on demand).",
    ),
    Setting(
        "DAKERA_BACKGROUND_CPU_PERCENT",
        "background_cpu_percent",
        int_parser(1, 100),
        25,
        "Share of one core a background lifecycle pass may use; it sleeps between batches.",
    ),
    Setting(
        "DAKERA_GRAPH_SIMILARITY_THRESHOLD",
        "graph_similarity_threshold",
        float_parser(0.0, 1.0),
        0.85,
        "Cosine similarity from which a stored memory gets a `related_to` edge to an existing one.",
    ),
    Setting(
        "DAKERA_ODE_URL",
        "ode_url",
        parse_http_url,
        None,
        "Base URL of the ODE/GLiNER entity sidecar (`POST /ode/extract`), for namespaces whose "
        "extractor is `gliner`.",
    ),
    Setting(
        "DAKERA_ODE_ALLOW_PRIVATE",
        "ode_allow_private",
        parse_bool,
        False,
        "Let entity sidecar URLs point at loopback or private addresses (SSRF guard off for them).",
    ),
    Setting(
        "DAKERA_MCP_ENABLED",
        "mcp_enabled",
        parse_bool,
        True,
        "Serve the Model Context Protocol (streamable HTTP) at `/mcp`, with the same API keys.",
    ),
    Setting(
        "DAKERA_MCP_READ_ONLY",
        "mcp_read_only",
        parse_bool,
        False,
        "Hide and refuse every MCP tool that writes (store, update, forget, sessions …).",
    ),
    Setting(
        "DAKERA_MCP_MAX_CONTENT_CHARS",
        "mcp_max_content_chars",
        int_parser(1, 1_000_000),
        1000,
        "Characters of each memory's content an MCP tool result shows; longer content is cut "
        "and marked as cut (`dakera_memory_get` reads it whole).",
    ),
    Setting(
        "DAKERA_MCP_API_KEY",
        "mcp_api_key",
        parse_str,
        None,
        "API key `dakera-server mcp` (stdio) acts with when `--api-key` is not given.",
        secret=True,
    ),
    Setting(
        "DAKERA_MAX_BODY_SIZE",
        "max_body_size",
        int_parser(1),
        10_485_760,
        "Largest request body in bytes; larger bodies get 413 before they are read.",
    ),
    Setting(
        "DAKERA_SECURITY_PRESET",
        "security_preset",
        choice_parser("default", "permissive", "strict"),
        "default",
        "Security-header preset: `default` (CSP `default-src 'none'; frame-ancestors 'none'`, "
        "HSTS), `permissive` (no CSP, no HSTS) or `strict` (restrictive CSP, HSTS preload).",
    ),
    Setting(
        "DAKERA_HSTS_ENABLED",
        "hsts_enabled",
        parse_bool,
        None,
        "Send `Strict-Transport-Security` (unset: as the preset says; on for default, strict).",
    ),
    Setting(
        "DAKERA_HSTS_MAX_AGE",
        "hsts_max_age",
        int_parser(0),
        None,
        "HSTS `max-age` in seconds (unset: 31536000, or 63072000 with the strict preset).",
    ),
    Setting(
        "DAKERA_FRAME_OPTIONS",
        "frame_options",
        parse_header_value,
        "DENY",
        "`X-Frame-Options` value: `DENY`, `SAMEORIGIN` or a custom value.",
    ),
    Setting(
        "DAKERA_CSP_ENABLED",
        "csp_enabled",
        parse_bool,
        None,
        "Send `Content-Security-Policy` (unset: as the preset says).",
    ),
    Setting(
        "DAKERA_CSP_DIRECTIVES",
        "csp_directives",
        parse_header_value,
        None,
        "Custom `Content-Security-Policy` value replacing the preset's directives.",
    ),
    Setting(
        "DAKERA_CORS_ORIGINS",
        "cors_origins",
        parse_origins,
        (),
        "Origins allowed to call the API from a browser, comma-separated, or `*` (none if unset).",
    ),
    Setting(
        "DAKERA_CORS_CREDENTIALS",
        "cors_credentials",
        parse_bool,
        False,
        "Send `Access-Control-Allow-Credentials: true` to allowed origins (never with `*`).",
    ),  # Documents, attachments and records (issue 20): opt-in lanes, as in dakera-api.md §5.1.
    Setting(
        "DAKERA_ATTACHMENTS",
        "attachments_enabled",
        parse_bool,
        False,
        "Serve the attachment routes (raw files per namespace, content-addressed by SHA-256); "
        "off: they answer 501 `FEATURE_DISABLED`.",
    ),
    Setting(
        "DAKERA_MAX_ATTACHMENT_BYTES",
        "max_attachment_bytes",
        int_parser(1),
        26_214_400,
        "Largest attachment upload in bytes (413 above it); the upload route's body limit "
        "instead of `DAKERA_MAX_BODY_SIZE`.",
    ),
    Setting(
        "DAKERA_ATTACHMENT_MAX_BYTES",
        "max_attachment_bytes",
        int_parser(1),
        26_214_400,
        "The SDK's and dakera-api.md's name for `DAKERA_MAX_ATTACHMENT_BYTES` (either may be "
        "set; both only to the same value).",
    ),
    Setting(
        "DAKERA_DOCUMENTS",
        "documents_enabled",
        parse_bool,
        False,
        "Serve document import (text, Markdown, HTML; PDF and DOCX from attachments) as chunk "
        "memories; off: 501 `FEATURE_DISABLED`.",
    ),
    Setting(
        "DAKERA_DOCUMENT_CHUNK_TOKENS",
        "document_chunk_tokens",
        int_parser(16, 8192),
        400,
        "Default token budget of one document chunk (clamped to the embedding model's window).",
    ),
    Setting(
        "DAKERA_DOCUMENT_CHUNK_OVERLAP_TOKENS",
        "document_chunk_overlap_tokens",
        int_parser(0, 2048),
        50,
        "Default tokens a chunk repeats from the end of the one before (at most a quarter of "
        "the budget).",
    ),
    Setting(
        "DAKERA_DOCUMENT_MAX_PAGES",
        "document_max_pages",
        int_parser(1),
        2000,
        "Most pages a PDF import may have (400 above it, nothing stored).",
    ),
    Setting(
        "DAKERA_DOCUMENT_MAX_TEXT_BYTES",
        "document_max_text_bytes",
        int_parser(1),
        20_000_000,
        "Most text (UTF-8 bytes) one document may expand to, and most uncompressed bytes a DOCX "
        "may hold (400 above it: a decompression bomb is stopped here).",
    ),
    Setting(
        "DAKERA_DOCUMENT_MAX_CHUNKS",
        "document_max_chunks",
        int_parser(1),
        5000,
        "Most chunks one document may become (413 above it, nothing stored).",
    ),
    Setting(
        "DAKERA_TRANSCRIPTION_URL",
        "transcription_url",
        parse_http_url,
        None,
        "Base URL of an OpenAI-compatible speech-to-text endpoint (`POST /v1/audio/"
        "transcriptions`) for attachment transcription; unset: those routes answer 501.",
    ),
    Setting(
        "DAKERA_TRANSCRIPTION_MODEL",
        "transcription_model",
        parse_str,
        "whisper-1",
        "Model name sent to the transcription endpoint.",
    ),
    Setting(
        "DAKERA_TRANSCRIPTION_API_KEY",
        "transcription_api_key",
        parse_str,
        None,
        "Bearer token for the transcription endpoint, if it needs one.",
        secret=True,
    ),
    Setting(
        "DAKERA_VISION_URL",
        "vision_url",
        parse_http_url,
        None,
        "Base URL of an OpenAI-compatible vision chat endpoint (`POST /v1/chat/completions`) "
        "that captions PNG attachments for image indexing; unset: those routes answer 501.",
    ),
    Setting(
        "DAKERA_VISION_MODEL",
        "vision_model",
        parse_str,
        "gpt-4o-mini",
        "Model name sent to the vision endpoint.",
    ),
    Setting(
        "DAKERA_VISION_API_KEY",
        "vision_api_key",
        parse_str,
        None,
        "Bearer token for the vision endpoint, if it needs one.",
        secret=True,
    ),
    Setting(
        "DAKERA_MEDIA_ALLOW_PRIVATE",
        "media_allow_private",
        parse_bool,
        False,
        "Let the transcription and vision URLs point at loopback or private addresses (SSRF "
        "guard off for them; link-local and metadata addresses stay refused).",
    ),
    Setting(
        "DAKERA_RECORDS",
        "records_enabled",
        parse_bool,
        False,
        "Serve multi-representation records (`/v1/namespaces/{ns}/records`); off: 501.",
    ),
    Setting(
        "DAKERA_RECORD_MAX_VECTORS",
        "record_max_vectors",
        int_parser(1),
        1024,
        "Most vectors (rows, all representations together) one record may carry (413 above).",
    ),
    Setting(
        "DAKERA_RECORD_MAX_BYTES",
        "record_max_bytes",
        int_parser(1),
        4_194_304,
        "Most packed bytes one record's representations may take (413 above).",
    ),
    Setting(
        "DAKERA_CONSOLE_ENABLED",
        "console_enabled",
        parse_bool,
        True,
        "Serve the web console at `/console` (files shipped in the package; it signs in with an "
        "API key and can do what that key can do).",
    ),
    Setting(
        "DAKERA_TRUSTED_PROXIES",
        "trusted_proxies",
        parse_networks,
        (),
        "Reverse proxies (IP addresses or CIDR networks, comma-separated) whose "
        "`X-Forwarded-For` / `X-Forwarded-Proto` give the client address (audit `ip`) and "
        "scheme; from any other peer those headers are ignored.",
    ),
    Setting(
        "DAKERA_REFUSE_ROOT",
        "refuse_root",
        parse_bool,
        False,
        "Refuse to start when running as UID 0 (the container image turns this on).",
    ),
    Setting(
        "DAKERA_METRICS_SNAPSHOT_SECS",
        "metrics_snapshot_secs",
        int_parser(0, 86_400),
        60,
        "Seconds between persisted snapshots of the request counters behind analytics "
        "(0 = only at shutdown).",
    ),
    Setting(
        "DAKERA_SLOW_QUERY_THRESHOLD_MS",
        "slow_query_threshold_ms",
        int_parser(0, 3_600_000),
        500,
        "Searches, recalls and queries at least this many milliseconds long enter the "
        "slow-query log (changeable at runtime).",
    ),
)


def environment_table() -> str:
    """The README's environment table, generated from ``SETTINGS``."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "(unset)" if setting.default is None else f"`{setting.default}`"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)
