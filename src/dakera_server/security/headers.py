"""Security headers layer: the defence-in-depth headers of security.md on every response.

This is the outermost layer, so its headers are on every answer, refusals from inner layers,
404/405 and 500s included. Three presets (security.md, "Content Security Policy"):

========== ================================================== ===============================
preset     Content-Security-Policy                            Strict-Transport-Security
========== ================================================== ===============================
default    ``default-src 'none'; frame-ancestors 'none'``     ``max-age=31536000;
                                                              includeSubDomains``
permissive (off)                                              (off)
strict     ``default-src 'none'; frame-ancestors 'none';      ``max-age=63072000;
           base-uri 'none'; form-action 'none'; sandbox``     includeSubDomains; preload``
========== ================================================== ===============================

``DAKERA_HSTS_ENABLED``, ``DAKERA_HSTS_MAX_AGE``, ``DAKERA_CSP_ENABLED`` and
``DAKERA_CSP_DIRECTIVES`` override the preset when set; ``X-Frame-Options`` comes from
``DAKERA_FRAME_OPTIONS`` (``DENY`` by default); ``X-Content-Type-Options: nosniff``,
``X-XSS-Protection: 1; mode=block`` and ``Referrer-Policy: strict-origin-when-cross-origin``
are always sent.

The web console (``/console``) gets its own policy, ``CONSOLE_CSP``, whatever the preset: a page
needs scripts and styles, but only its own files (no inline script or style, no other origin,
no framing), and it talks to nothing but this server. The API keeps the preset's policy, which
lets a browser run nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.errors import InternalError
from dakera_server.security.responses import error_response

__all__ = [
    "CONSOLE_CSP",
    "PRESETS",
    "Preset",
    "SecurityHeadersMiddleware",
    "console_headers",
    "security_headers",
]

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
STRICT_CSP = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
)
ONE_YEAR = 31_536_000
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Preset:
    """What a preset turns on before explicit settings override it."""

    csp_enabled: bool
    csp: str
    hsts_enabled: bool
    hsts_max_age: int
    hsts_preload: bool


PRESETS: dict[str, Preset] = {
    "default": Preset(True, DEFAULT_CSP, True, ONE_YEAR, False),
    "permissive": Preset(False, DEFAULT_CSP, False, ONE_YEAR, False),
    "strict": Preset(True, STRICT_CSP, True, 2 * ONE_YEAR, True),
}


def security_headers(
    *,
    preset: str = "default",
    hsts_enabled: bool | None = None,
    hsts_max_age: int | None = None,
    frame_options: str = "DENY",
    csp_enabled: bool | None = None,
    csp_directives: str | None = None,
) -> list[tuple[str, str]]:
    """The header list a preset plus explicit overrides produce (None = the preset decides)."""
    chosen = PRESETS[preset]
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-XSS-Protection", "1; mode=block"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("X-Frame-Options", frame_options),
    ]
    if chosen.hsts_enabled if hsts_enabled is None else hsts_enabled:
        max_age = chosen.hsts_max_age if hsts_max_age is None else hsts_max_age
        value = f"max-age={max_age}; includeSubDomains"
        headers.append(("Strict-Transport-Security", value + ("; preload" * chosen.hsts_preload)))
    if chosen.csp_enabled if csp_enabled is None else csp_enabled:
        headers.append(("Content-Security-Policy", csp_directives or chosen.csp))
    return headers


def console_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the console's Content-Security-Policy in place of the API's."""
    kept = [(name, value) for name, value in headers if name != "Content-Security-Policy"]
    return [*kept, ("Content-Security-Policy", CONSOLE_CSP)]


class SecurityHeadersMiddleware:
    """Pure ASGI layer: set ``headers`` on every HTTP response (replacing same-named ones).

    ``path_headers`` maps a path prefix (the path itself and everything below it) to the list
    used there instead; the first matching prefix wins.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Sequence[tuple[str, str]],
        path_headers: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (),
    ) -> None:
        self.app = app
        self.headers = list(headers)
        self.path_headers = [(prefix.rstrip("/"), list(chosen)) for prefix, chosen in path_headers]

    def _headers_for(self, path: str) -> list[tuple[str, str]]:
        for prefix, chosen in self.path_headers:
            if path == prefix or path.startswith(prefix + "/"):
                return chosen
        return self.headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        headers = self._headers_for(scope["path"]) if self.path_headers else self.headers

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                response_headers = MutableHeaders(scope=message)
                for name, value in headers:
                    if name == "Content-Security-Policy" and name in response_headers:
                        # A route's own policy (a sandbox for served files) stays beside the
                        # preset's: a browser enforces both, so neither can loosen the other.
                        response_headers.append(name, value)
                    else:
                        response_headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # The one catch-all besides Starlette's own: an unexpected error escaped every
            # handler. Answer the generic 500 here so it carries these headers too, then
            # re-raise so the server error layer logs the traceback (it sends nothing more,
            # since a response has started).
            if not started:
                await error_response(InternalError("internal error"))(
                    scope, receive, send_with_headers
                )
            raise
