"""The error tree every layer raises, with the wire code each one answers.

Only the message of a ``DakeraError`` ever reaches a client; anything else is a 500 with a
generic message (the traceback stays in the server log).

    DakeraError                      500 INTERNAL_ERROR
    ├── InvalidInput                 400 INVALID_REQUEST
    │   ├── DimensionMismatch        400 DIMENSION_MISMATCH
    │   ├── EmptyVector              400 EMPTY_VECTOR
    │   └── InjectionDetected        400 INVALID_REQUEST
    ├── Unauthorized                 401 AUTHENTICATION_REQUIRED
    │   ├── InvalidApiKey            401 INVALID_API_KEY
    │   └── ApiKeyExpired            401 API_KEY_EXPIRED
    ├── Forbidden                    403 INSUFFICIENT_SCOPE
    │   └── NamespaceAccessDenied    403 NAMESPACE_ACCESS_DENIED
    ├── NotFound                     404 NOT_FOUND
    │   ├── RouteNotFound            404 ROUTE_NOT_FOUND
    │   ├── NamespaceNotFound        404 NAMESPACE_NOT_FOUND
    │   ├── MemoryNotFound           404 VECTOR_NOT_FOUND
    │   ├── SessionNotFound          404 NOT_FOUND
    │   ├── ApiKeyNotFound           404 API_KEY_NOT_FOUND
    │   └── JobNotFound              404 JOB_NOT_FOUND
    ├── MethodNotAllowed             405 METHOD_NOT_ALLOWED
    ├── Conflict                     409 CONFLICT
    ├── PayloadTooLarge              413 PAYLOAD_TOO_LARGE
    │   └── QuotaExceeded            413 QUOTA_EXCEEDED
    ├── UnsupportedMediaType         415 UNSUPPORTED_MEDIA_TYPE
    ├── UnprocessableContent         422 UNPROCESSABLE_CONTENT
    │   └── BackupRejected           422 BACKUP_REJECTED (a backup file refused before any write)
    │       ├── BackupUnrecognised   422 BACKUP_UNRECOGNISED
    │       ├── BackupTruncated      422 BACKUP_TRUNCATED
    │       ├── BackupCorrupt        422 BACKUP_CHECKSUM_MISMATCH
    │       ├── BackupKeyMismatch    422 BACKUP_KEY_MISMATCH
    │       └── BackupTooNew         422 BACKUP_FORMAT_UNSUPPORTED
    ├── HostNotAllowed               421 HOST_NOT_ALLOWED
    ├── RateLimited                  429 RATE_LIMIT_EXCEEDED
    ├── InternalError                500 INTERNAL_ERROR
    │   └── StorageError             500 STORAGE_ERROR
    ├── FeatureNotAvailable          501 NOT_IMPLEMENTED
    │   └── FeatureDisabled          501 FEATURE_DISABLED
    ├── Unavailable                  503 SERVICE_UNAVAILABLE
    └── ExtractionTimeout            504 EXTRACTION_TIMEOUT

``ConfigError`` is separate: it stops start-up and is never sent over the wire.
"""

from __future__ import annotations

__all__ = [
    "ApiKeyExpired",
    "ApiKeyNotFound",
    "BackupCorrupt",
    "BackupKeyMismatch",
    "BackupRejected",
    "BackupTooNew",
    "BackupTruncated",
    "BackupUnrecognised",
    "ConfigError",
    "Conflict",
    "DakeraError",
    "DimensionMismatch",
    "EmptyVector",
    "ExtractionTimeout",
    "FeatureDisabled",
    "FeatureNotAvailable",
    "Forbidden",
    "HostNotAllowed",
    "InjectionDetected",
    "InternalError",
    "InvalidApiKey",
    "InvalidInput",
    "JobNotFound",
    "MemoryNotFound",
    "MethodNotAllowed",
    "NamespaceAccessDenied",
    "NamespaceNotFound",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "RouteNotFound",
    "SessionNotFound",
    "StorageError",
    "Unauthorized",
    "Unavailable",
    "UnprocessableContent",
    "UnsupportedMediaType",
]


class ConfigError(Exception):
    """Invalid configuration: the message names the variable, the value and the fix."""


class DakeraError(Exception):
    """Root of every error a client may see. ``message`` must be safe to show anyone."""

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        details: str | None = None,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.resource = resource
        self.headers = headers or {}
        # Extra top-level body keys for wire forms that need them (never error/code).
        self.extra: dict[str, object] = {}


class InvalidInput(DakeraError):
    """The request is malformed or breaks a documented limit."""

    status = 400
    code = "INVALID_REQUEST"


class DimensionMismatch(InvalidInput):
    """A vector's length differs from its namespace's dimension."""

    code = "DIMENSION_MISMATCH"


class EmptyVector(InvalidInput):
    """A vector with no values."""

    code = "EMPTY_VECTOR"


class InjectionDetected(InvalidInput):
    """Input validation found one of the seven injection categories in a field."""


class Unauthorized(DakeraError):
    """No credentials were presented where they are required."""

    status = 401
    code = "AUTHENTICATION_REQUIRED"


class InvalidApiKey(Unauthorized):
    """The presented key is unknown, deactivated or deleted."""

    code = "INVALID_API_KEY"


class ApiKeyExpired(Unauthorized):
    """The presented key is past its expiry."""

    code = "API_KEY_EXPIRED"


class Forbidden(DakeraError):
    """The key is valid but its scope is below what the route needs."""

    status = 403
    code = "INSUFFICIENT_SCOPE"


class NamespaceAccessDenied(Forbidden):
    """The key may not touch this namespace (used only where hiding it is not required)."""

    code = "NAMESPACE_ACCESS_DENIED"


class NotFound(DakeraError):
    """The thing asked for does not exist (or is invisible to this key, which looks the same)."""

    status = 404
    code = "NOT_FOUND"


class RouteNotFound(NotFound):
    """No route matches the path."""

    code = "ROUTE_NOT_FOUND"


class NamespaceNotFound(NotFound):
    """Unknown namespace, or one the key may not see."""

    code = "NAMESPACE_NOT_FOUND"


class MemoryNotFound(NotFound):
    """Unknown memory or vector id."""

    code = "VECTOR_NOT_FOUND"


class SessionNotFound(NotFound):
    """Unknown session id."""


class ApiKeyNotFound(NotFound):
    """Unknown API key id."""

    code = "API_KEY_NOT_FOUND"


class JobNotFound(NotFound):
    """Unknown background job id (jobs live in memory and are lost on restart)."""

    code = "JOB_NOT_FOUND"


class MethodNotAllowed(DakeraError):
    """The path exists but not with this HTTP method."""

    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(DakeraError):
    """The request clashes with the current state (duplicate id, inactive key, running job)."""

    status = 409
    code = "CONFLICT"


class PayloadTooLarge(DakeraError):
    """The body or a field is over its size limit."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


class QuotaExceeded(PayloadTooLarge):
    """A hard namespace quota would be exceeded."""

    code = "QUOTA_EXCEEDED"


class HostNotAllowed(DakeraError):
    """Auth is off and the Host header is not local or allow-listed (DNS-rebinding guard)."""

    status = 421
    code = "HOST_NOT_ALLOWED"


class UnsupportedMediaType(DakeraError):
    """The declared media type is not accepted here, or the bytes are not of that type."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class UnprocessableContent(DakeraError):
    """A strict body carried unknown fields, or content could not be processed."""

    status = 422
    code = "UNPROCESSABLE_CONTENT"


class BackupRejected(UnprocessableContent):
    """A backup file that restore, verify or upload refuses before changing anything."""

    code = "BACKUP_REJECTED"


class BackupUnrecognised(BackupRejected):
    """Not a dakera-server backup at all (wrong magic bytes, unreadable header)."""

    code = "BACKUP_UNRECOGNISED"


class BackupTruncated(BackupRejected):
    """The file ends before its end frame and checksum: an interrupted copy."""

    code = "BACKUP_TRUNCATED"


class BackupCorrupt(BackupRejected):
    """The SHA-256 over the content (or a sealed frame's tag) does not match: altered bytes."""

    code = "BACKUP_CHECKSUM_MISMATCH"


class BackupKeyMismatch(BackupRejected):
    """Sealed with another encryption key than this server's (or this server has none)."""

    code = "BACKUP_KEY_MISMATCH"


class BackupTooNew(BackupRejected):
    """Written in a newer backup format than this server reads."""

    code = "BACKUP_FORMAT_UNSUPPORTED"


class RateLimited(DakeraError):
    """A rate limit was hit; ``retry_after`` is whole seconds, at least 1."""

    status = 429
    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: int = 1, details: str | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(message, details=details, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        # security.md's 429 example carries "message"; the SDK reads "error" and "code".
        self.extra = {"message": message}


class InternalError(DakeraError):
    """Something failed inside the server; the message is generic on purpose."""


class StorageError(InternalError):
    """The durable store failed; nothing was written."""

    code = "STORAGE_ERROR"


class FeatureNotAvailable(DakeraError):
    """This server does not implement the feature."""

    status = 501
    code = "NOT_IMPLEMENTED"


class FeatureDisabled(FeatureNotAvailable):
    """An opt-in feature is switched off; ``details`` names the switch."""

    code = "FEATURE_DISABLED"


class Unavailable(DakeraError):
    """Temporarily unable to serve (starting, overloaded, store locked); retry later."""

    status = 503
    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 1, details: str | None = None) -> None:
        super().__init__(
            message, details=details, headers={"Retry-After": str(max(1, retry_after))}
        )


class ExtractionTimeout(DakeraError):
    """Extracting a document's text took longer than allowed; nothing was stored."""

    status = 504
    code = "EXTRACTION_TIMEOUT"
