"""Routes serving the console's files: one public route per file, read once at start-up.

Each file gets its own exact path (``/console/js/app.js``), so the set of servable paths is
fixed when the app is built: no path parameter reaches the file system, and the auth layer,
which lets public paths through by exact match, needs no prefix rule. Files are held in memory
with a gzip copy (sent when the browser accepts it: the page weight it saves is in
``docs/console.md``) and a strong ETag, and revalidated on every load (``no-cache``), so an
upgraded server is picked up without a stale mix of old and new modules.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dakera_server.api.scopes import Routes, Scope

__all__ = ["Asset", "console_routes", "load_assets"]

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
AUTH_MARK = 'data-auth="on"'
PRELOAD_MARK = "<!-- modulepreload -->"


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, a gzip copy, its media type and its ETag."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        """Build an asset from its bytes (gzip level 9: done once, at start-up)."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, gzip.compress(body, 9, mtime=0), media_type, etag)

    def respond(self, request: Request) -> Response:
        """200 with the (possibly gzipped) body, or 304 when the browser's copy is current."""
        headers = {"ETag": self.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif "." + entry.name.rsplit(".", 1)[-1] in MEDIA_TYPES:
            yield prefix + entry.name, entry


def load_assets() -> dict[str, Asset]:
    """Every servable file of the package's ``static/`` folder, by path relative to it."""
    folder = resources.files(__package__ or "dakera_server.api.console").joinpath("static")
    return {
        name: Asset.of(entry.read_bytes(), MEDIA_TYPES["." + name.rsplit(".", 1)[-1]])
        for name, entry in _walk(folder)
    }


def _serve(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return asset.respond(request)

    return serve


async def _to_console(request: Request) -> Response:
    # Relative, so a console behind a reverse proxy's path prefix stays under that prefix.
    return RedirectResponse("../console", status_code=308)


def console_routes(*, auth_enabled: bool) -> Routes:
    """The console's routes: ``/console`` (the page), ``/console/`` and one per static file.

    ``auth_enabled`` is written into the page, so that with authentication off it opens
    without asking for a key (it would otherwise have to probe the API and fail once); so is
    a ``modulepreload`` link per module.
    """
    assets = load_assets()
    page = assets.pop("index.html")
    # Every module is announced up front, so the browser fetches them in parallel rather than
    # discovering them one import level at a time.
    preload = "\n".join(
        f'<link rel="modulepreload" href="console/{name}">'
        for name in assets
        if name.endswith(".js")
    )
    html = page.body.decode().replace(PRELOAD_MARK, preload)
    if not auth_enabled:
        html = html.replace(AUTH_MARK, 'data-auth="off"')
    page = Asset.of(html.encode(), page.media_type)
    routes = Routes()
    routes.get("/console", scope=Scope.PUBLIC, include_in_schema=False)(_serve(page))
    routes.get("/console/", scope=Scope.PUBLIC, include_in_schema=False)(_to_console)
    for name, asset in assets.items():
        path = f"/console/{name}"
        routes.get(path, scope=Scope.PUBLIC, include_in_schema=False)(_serve(asset))
    return routes
