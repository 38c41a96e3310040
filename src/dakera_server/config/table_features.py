"""Settings of the memory lifecycle, the knowledge graph's entity sidecar, the MCP server, the
web console, and the files, documents, media and records lanes.

Part of the one settings table (``table.py`` joins the parts, in this order).
"""

from __future__ import annotations

from dakera_server.config.parsers import (
    float_parser,
    int_parser,
    parse_bool,
    parse_http_url,
    parse_path,
    parse_str,
)
from dakera_server.config.setting import Setting

__all__ = ["FEATURES"]

FEATURES: tuple[Setting, ...] = (
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
        "DAKERA_BACKUP_DIR",
        "backup_dir",
        parse_path,
        None,
        "Directory holding backups (unset: `backups` under `DAKERA_DATA_DIR`).",
    ),
    Setting(
        "DAKERA_CONSOLE_ENABLED",
        "console_enabled",
        parse_bool,
        True,
        "Serve the web console at `/console` (files shipped in the package; it signs in with an "
        "API key and can do what that key can do).",
    ),
)
