"""Body-size limit layer: 413 ``PAYLOAD_TOO_LARGE`` before an oversized body is read.

A declared ``Content-Length`` above the limit is refused at once, without reading a byte of the
body. A body without one (chunked) is counted as it streams through a wrapped ``receive``; the
chunk that crosses the limit makes ``receive`` raise, and the 413 goes out while the client may
still be sending. Inner code never holds more than the limit in memory because of this layer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.api.errors import error_response
from dakera_server.errors import PayloadTooLarge

__all__ = ["BodySizeLimitMiddleware", "BodyTooLarge"]


class BodyTooLarge(PayloadTooLarge):
    """Raised from ``receive`` when the streamed body passes the limit."""


class BodySizeLimitMiddleware:
    """Pure ASGI layer enforcing ``max_body_size`` bytes per request body."""

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.message = f"request body is larger than {max_body_size} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_size:
            await error_response(BodyTooLarge(self.message))(scope, receive, send)
            return
        received = 0
        tripped = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            if tripped:
                raise BodyTooLarge(self.message)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    tripped = True
                    raise BodyTooLarge(self.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                # Some inner code caught the error and answered on its own (FastAPI turns a
                # failing body read into a 400): the refusal is ours to send.
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if tripped and not started:
            await error_response(BodyTooLarge(self.message))(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
