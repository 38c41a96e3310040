"""Settings of the server itself: where it listens and keeps its data, authentication and
encryption keys, embeddings, threads and capacity, gRPC, operations metrics.

Part of the one settings table (``table.py`` joins the parts, in this order).
"""

from __future__ import annotations

from pathlib import Path

from dakera_server.config.parsers import (
    check_encryption_key,
    choice_parser,
    int_parser,
    parse_bool,
    parse_list,
    parse_path,
    parse_storage_url,
    parse_str,
)
from dakera_server.config.setting import Setting

__all__ = ["SERVER"]

SERVER: tuple[Setting, ...] = (
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
        "DAKERA_STORAGE_URL",
        "storage_url",
        parse_storage_url,
        None,
        "PostgreSQL URL (`postgresql://user:password@host:5432/db`) of a store shared by "
        "several server processes; unset: the embedded SQLite store in `DAKERA_DATA_DIR`. "
        "Never logged or shown.",
        secret=True,
    ),
    Setting(
        "DAKERA_NODE_ID",
        "node_id",
        parse_str,
        None,
        "Name of this server process among the nodes sharing one PostgreSQL store (cluster "
        "routes, per-node usage rows); unset: the host name and a random suffix, kept in "
        "`DAKERA_DATA_DIR/node_id`.",
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
