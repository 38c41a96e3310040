"""The maintenance gate as a pure ASGI layer: while a restore replaces the store, every request
gets 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` (health probes and the restore status
route excepted, so clients can watch it), and the restore waits for writes in flight.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from dakera_server.engine.portability.gate import MaintenanceGate
from dakera_server.errors import Unavailable
from dakera_server.security.responses import error_response

__all__ = ["MaintenanceGateMiddleware"]

RETRY_AFTER_SECONDS = 5
EXEMPT_PREFIXES = ("/health", "/metrics", "/v1/admin/backups/restore/", "/admin/backups/restore/")


class MaintenanceGateMiddleware:
    """Admits requests through ``gate`` (innermost layer: refusals are still authenticated
    and audited)."""

    def __init__(self, app: ASGIApp, *, gate: MaintenanceGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        reason = self.gate.enter(method)
        if reason is not None:
            refusal = Unavailable(reason, retry_after=RETRY_AFTER_SECONDS)
            await error_response(refusal)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave(method)
