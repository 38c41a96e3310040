"""``create_app(settings)``: the layers in request order, the routers, one error handler.

Request path (ARCHITECTURE.md): security headers → body-size limit → audit → authentication →
rate limiting → input validation → route handler → engine → storage. The middleware list below
is in that order, outermost first; layers not yet built are absent, never stubbed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from dakera_server import API_VERSION, __version__
from dakera_server.api import agents, health, memory, sessions
from dakera_server.api.errors import exception_handlers
from dakera_server.api.scopes import public_paths, scope_table
from dakera_server.config import Settings
from dakera_server.engine.core import Engine
from dakera_server.security.auth import AuthenticationMiddleware
from dakera_server.security.keys import KeyRing

__all__ = ["create_app"]

logger = logging.getLogger("dakera_server")
ROUTERS = (health, memory, sessions, agents)
FLUSH_INTERVAL_SECONDS = 5.0


def _start_background(engine: Engine, stop: threading.Event) -> threading.Thread:
    """Load the indexes, then persist access statistics every few seconds until ``stop``."""

    def run() -> None:
        engine.load()
        while not stop.wait(FLUSH_INTERVAL_SECONDS):
            engine.memories.flush_access_stats()

    thread = threading.Thread(target=run, name="dakera-background", daemon=True)
    thread.start()
    return thread


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """Build the ASGI app over ``settings``; opens the store and loads the embedding model."""
    engine = engine or Engine(settings)
    keyring = KeyRing(engine.store, settings.root_api_key)
    if settings.auth_enabled:
        keyring.bootstrap()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = _start_background(engine, stop)
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)
            engine.close()

    app = FastAPI(
        title="dakera-server",
        version=__version__,
        summary=f"Dakera memory server (wire version {API_VERSION})",
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    for module in ROUTERS:
        module.routes.mount(app)
    app.state.engine = engine
    app.state.keyring = keyring
    app.state.settings = settings
    app.state.scope_table = scope_table(app)
    app.user_middleware = [
        Middleware(
            AuthenticationMiddleware,
            authenticate=keyring.authenticate,
            public_paths=public_paths(app),
            enabled=settings.auth_enabled,
            allowed_hosts=frozenset(settings.allowed_hosts),
        ),
    ]
    return app
