"""Settings of the protective layers: rate limits, the audit log, the body-size limit, security
headers, CORS and trusted proxies.

Part of the one settings table (``table.py`` joins the parts, in this order).
"""

from __future__ import annotations

from dakera_server.config.parsers import (
    choice_parser,
    int_parser,
    parse_bool,
    parse_header_value,
    parse_networks,
    parse_origins,
    parse_path,
    parse_path_list,
    parse_redis_url,
)
from dakera_server.config.setting import Setting

__all__ = ["PROTECTION"]

PROTECTION: tuple[Setting, ...] = (
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
        "DAKERA_MAX_BODY_SIZE",
        "max_body_size",
        int_parser(1),
        10_485_760,
        "Largest request body in bytes; larger bodies get 413 before they are read.",
    ),
    Setting(
        "DAKERA_MAX_UPLOAD_SIZE",
        "max_upload_size",
        int_parser(1),
        1_073_741_824,
        "Largest body in bytes of a backup upload or a memory import (other routes keep "
        "`DAKERA_MAX_BODY_SIZE`).",
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
)
