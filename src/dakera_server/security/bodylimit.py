"""Body-size limit layer: 413 ``PAYLOAD_TOO_LARGE`` before an oversized body is read.

A declared ``Content-Length`` above the limit is refused at once, without reading a byte of the
body. A body without one (chunked) is counted as it streams through a wrapped ``receive``; the
chunk that crosses the limit makes ``receive`` raise, and the 413 goes out while the client may
still be sending. Inner code never holds more than the limit in memory because of this layer.

Auditing: this layer sits outside the audit layer (ARCHITECTURE.md's order), so a request it
refuses on the declared length never reaches the audit layer at all, and one it refuses while
streaming gets its answer from here, not from the app the audit layer watched. Every request
whose answer this layer gives (or takes over) is therefore reported to ``on_refusal`` (the audit
log's sink, when audit logging is on), and the flag ``BODY_REFUSED`` in ``scope["state"]`` tells
the audit layer inside not to write an entry of its own for it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.errors import PayloadTooLarge
from dakera_server.security.responses import error_response

__all__ = ["BODY_REFUSED", "BodySizeLimitMiddleware", "BodyTooLarge", "RefusalSink"]

BODY_REFUSED = "dakera.body_refused"
# (scope, status sent, time.perf_counter() when the request arrived, response body sent)
RefusalSink = Callable[[Scope, int, float, bytes], None]


class BodyTooLarge(PayloadTooLarge):
    """Raised from ``receive`` when the streamed body passes the limit."""


class BodySizeLimitMiddleware:
    """Pure ASGI layer enforcing ``max_body_size`` bytes per request body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_size: int,
        on_refusal: RefusalSink | None = None,
        path_limits: Sequence[tuple[str, re.Pattern[str], int, str]] = (),
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.on_refusal = on_refusal
        self.message = f"request body is larger than {max_body_size} bytes"
        # (method, compiled path, limit, setting): routes whose body has a limit of its own,
        # e.g. attachment uploads (DAKERA_MAX_ATTACHMENT_BYTES instead of the global one).
        self.path_limits = [
            (method, pattern, limit, f"request body is larger than {limit} bytes ({setting})")
            for method, pattern, limit, setting in path_limits
        ]

    def _limit(self, scope: Scope) -> tuple[int, str]:
        for method, pattern, limit, message in self.path_limits:
            if scope.get("method") == method and pattern.match(scope.get("path", "")):
                return limit, message
        return self.max_body_size, self.message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        limit, message_text = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, arrived, message_text)
            return
        received = 0
        tripped = False
        status: int | None = None  # of a response that went out before the limit tripped

        async def counting_receive() -> Message:
            nonlocal received, tripped
            if tripped:
                raise BodyTooLarge(message_text)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    scope.setdefault("state", {})[BODY_REFUSED] = True
                    raise BodyTooLarge(message_text)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if tripped:
                # Some inner code caught the error and answered on its own (FastAPI turns a
                # failing body read into a 400): the refusal is ours to send.
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if status is not None:  # too late to answer 413: the response had started
                self._report(scope, status, arrived, b"")
                raise
        if not tripped:
            return
        if status is None:
            await self._refuse(scope, receive, send, arrived, message_text)
        else:
            self._report(scope, status, arrived, b"")

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, arrived: float, message: str
    ) -> None:
        response = error_response(BodyTooLarge(message))
        await response(scope, receive, send)
        self._report(scope, response.status_code, arrived, bytes(response.body))

    def _report(self, scope: Scope, status: int, arrived: float, body: bytes) -> None:
        if self.on_refusal is not None:
            self.on_refusal(scope, status, arrived, body)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
