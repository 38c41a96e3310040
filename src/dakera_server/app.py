"""``create_app(settings)``: the layers in request order, the routers, one error handler.

Request path (ARCHITECTURE.md): security headers → body-size limit → audit → authentication →
rate limiting → back-pressure → input validation → route handler → engine → storage. The
middleware list below is in that order, outermost first; layers not yet built are absent, never
stubbed. Before them all, the trusted-proxy layer settles the client address and scheme
(``security/proxy.py``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import compile_path

from dakera_server import API_VERSION, __version__
from dakera_server.api import health
from dakera_server.api.admin import audit, backups, doctor, encryption, keys, policies
from dakera_server.api.console.routes import console_routes
from dakera_server.api.documents import attachments, documents, media, records
from dakera_server.api.documents.attachments import RAW_BODY_ROUTES
from dakera_server.api.documents.documents import FILE_FIELDS
from dakera_server.api.errors import exception_handlers
from dakera_server.api.maintenance import MaintenanceGateMiddleware
from dakera_server.api.memories import agents, feedback, knowledge, lifecycle, portability, sessions
from dakera_server.api.memories import routes as memory
from dakera_server.api.ops import analytics as ops_analytics
from dakera_server.api.ops import cluster as ops_cluster
from dakera_server.api.ops import indexes as ops_indexes
from dakera_server.api.ops import limits as ops_limits
from dakera_server.api.ops import ops as ops_routes
from dakera_server.api.ops import prometheus, sealing
from dakera_server.api.ops.metering import MeteringMiddleware
from dakera_server.api.routeorder import hot_routes_first
from dakera_server.api.scopes import public_paths, scope_table
from dakera_server.api.vectors import advanced as vector_advanced
from dakera_server.api.vectors import namespaces
from dakera_server.api.vectors import routes as vectors
from dakera_server.api.vectors import text as vector_text
from dakera_server.config import Settings
from dakera_server.engine.access import ANONYMOUS
from dakera_server.engine.core import Engine
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import DakeraError
from dakera_server.grpc.server import GrpcServer, create_grpc_server
from dakera_server.mcp.http import MCP_PREFIXES, McpEndpoint
from dakera_server.mcp.server import Options as McpOptions
from dakera_server.mcp.table import Limits as McpLimits
from dakera_server.security.audit import AuditMiddleware, AuditWriter, refusal_auditor
from dakera_server.security.auth import AUTH_DISABLED_CALLER, AuthenticationMiddleware
from dakera_server.security.backpressure import BackpressureMiddleware
from dakera_server.security.bodylimit import BodySizeLimitMiddleware
from dakera_server.security.cors import CORSMiddleware
from dakera_server.security.encryption import Rotation, open_codec
from dakera_server.security.headers import (
    SecurityHeadersMiddleware,
    console_headers,
    security_headers,
)
from dakera_server.security.keys import KeyRing
from dakera_server.security.proxy import ProxyHeadersMiddleware
from dakera_server.security.ratelimit import RateLimiter, RateLimitMiddleware
from dakera_server.security.validation import InputValidationMiddleware
from dakera_server.storage.factory import open_store

__all__ = ["build_engine", "create_app"]

logger = logging.getLogger("dakera_server")
ROUTERS = (
    *(
        health,
        memory,
        sessions,
        agents,
        encryption,
        keys,
        policies,
        audit,
        doctor,
        lifecycle,
        feedback,
        knowledge,
    ),
    *(namespaces, vectors, vector_text, vector_advanced),
    *(backups, portability),
    *(attachments, documents, media, records),
    *(prometheus, ops_analytics, ops_routes, ops_limits, ops_indexes, ops_cluster, sealing),
)
FLUSH_INTERVAL_SECONDS = 5.0
# Routes that take files: their own body limit (DAKERA_MAX_UPLOAD_SIZE), checked row by row
# by the routes themselves (the validation layer streams them through unread).
FILE_PATHS = frozenset({"/v1/import", "/v1/admin/backups/upload", "/admin/backups/upload"})


def _start_background(engine: Engine, stop: threading.Event) -> threading.Thread:
    """Load the indexes, then persist access statistics every few seconds until ``stop``."""

    def run() -> None:
        engine.load()
        while not stop.wait(FLUSH_INTERVAL_SECONDS):
            try:
                engine.memories.counters.flush()
            except DakeraError as exc:  # a store that is down now may be back next time
                logger.warning("access statistics not persisted: %s", exc.message)
            engine.keys.maintain()

    thread = threading.Thread(target=run, name="dakera-background", daemon=True)
    thread.start()
    return thread


def build_engine(
    settings: Settings,
    *,
    embedder: EmbeddingProvider | None = None,
    clock: Callable[[], float] = time.time,
) -> Engine:
    """Open the store the settings select (SQLite in the data directory, or PostgreSQL), check or
    set up encryption at rest on it, then build the engine over it."""
    data_dir = Path(settings.data_dir)
    store = open_store(settings.storage_url, data_dir)
    logger.info("store: %s", store.describe())  # never the password
    try:
        codec = open_codec(store, settings.encryption_key, data_dir)
        if codec is not None:
            store.codec = codec
        return Engine(settings, embedder=embedder, clock=clock, store=store)
    except BaseException:
        store.close()
        raise


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """Build the ASGI app over ``settings``; opens the store and loads the embedding model."""
    engine = engine or build_engine(settings)
    keyring = KeyRing(engine.keys, settings.root_api_key)
    if settings.auth_enabled:
        keyring.bootstrap()
    limiter = RateLimiter(
        rps=settings.rate_limit_rps,
        burst=settings.rate_limit_burst,
        redis_url=settings.redis_url,
        namespace_limits=engine.policies.rate_limits,
        limits_active=lambda: engine.policies.any_rate_limits,
    )
    audit_log = AuditWriter(settings.audit_log_path) if settings.audit_enabled else None
    if audit_log is not None:
        engine.events.add_sink(audit_log.write_event)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = _start_background(engine, stop)
        if grpc_server is not None:
            grpc_server.start()  # same process, same engine; answers UNAVAILABLE until loaded
        try:
            if mcp_endpoint is None:
                yield
            else:
                async with mcp_endpoint.running():
                    yield
        finally:
            if grpc_server is not None:
                await asyncio.to_thread(grpc_server.stop)
            stop.set()
            await asyncio.to_thread(thread.join)
            engine.close()
            limiter.close()
            if audit_log is not None:
                audit_log.close()  # drains every queued entry: a clean shutdown loses none

    app = FastAPI(
        title="dakera-server",
        version=__version__,
        summary=f"Dakera memory server (wire version {API_VERSION})",
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    for module in ROUTERS:
        module.routes.mount(app)
    if settings.console_enabled:
        console_routes(auth_enabled=settings.auth_enabled).mount(app)
    hot_routes_first(app.router.routes)
    app.state.engine = engine
    app.state.keyring = keyring
    app.state.rotation = Rotation(engine.store, Path(settings.data_dir), engine.audit.log)
    app.state.settings = settings
    app.state.scope_table = scope_table(app)
    app.state.rate_limiter = limiter
    app.state.prometheus = prometheus.registry_for(engine, limiter)
    # Set by whoever runs the server (``dakera-server serve``, the test harness): asks it to
    # stop gracefully. ``POST /ops/shutdown`` answers 501 without one.
    app.state.request_shutdown = None
    grpc_server: GrpcServer | None = None
    if settings.grpc_enabled:
        grpc_server = create_grpc_server(
            engine,
            route_scopes={(r.method, r.path): r.scope for r in app.state.scope_table},
            authenticate=keyring.authenticate,
            auth_enabled=settings.auth_enabled,
            anonymous=ANONYMOUS,
            auth_disabled_caller=AUTH_DISABLED_CALLER,
            host=settings.host,
            port=settings.grpc_port,
        )
    app.state.grpc_server = grpc_server
    mcp_endpoint: McpEndpoint | None = None
    if settings.mcp_enabled:
        # Added after the scope table is built: /mcp is no REST route; each tool call is one.
        mcp_endpoint = McpEndpoint(
            app,
            options=McpOptions(
                read_only=settings.mcp_read_only,
                limits=McpLimits(max_content_chars=settings.mcp_max_content_chars),
            ),
            limiter=limiter,
            max_body_size=settings.max_body_size,
        )
        app.router.routes.extend(mcp_endpoint.routes())
    app.state.mcp_endpoint = mcp_endpoint
    audit_layer = (
        []
        if audit_log is None
        else [
            Middleware(
                AuditMiddleware,
                writer=audit_log,
                exclude_paths=settings.audit_exclude_paths,
                request_body=settings.audit_request_body,
                response_body=settings.audit_response_body,
                max_body_size=settings.audit_max_body_size,
            )
        ]
    )
    headers = security_headers(
        preset=settings.security_preset,
        hsts_enabled=settings.hsts_enabled,
        hsts_max_age=settings.hsts_max_age,
        frame_options=settings.frame_options,
        csp_enabled=settings.csp_enabled,
        csp_directives=settings.csp_directives,
    )
    app.user_middleware = [
        # Before the security layers: who the client is and whether it spoke TLS, as the trusted
        # proxy says (every later layer, the audit log included, sees the real client).
        Middleware(ProxyHeadersMiddleware, trusted=settings.trusted_proxies),
        Middleware(
            SecurityHeadersMiddleware,
            headers=headers,
            path_headers=[("/console", console_headers(headers))]
            if settings.console_enabled
            else [],
        ),
        # Right inside the headers layer: times every other layer, counts refusals too.
        Middleware(
            MeteringMiddleware,
            metrics=engine.ops.metrics,
            slowlog=engine.ops.slowlog,
            maintenance=engine.ops.maintenance,
        ),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_credentials,
        ),
        Middleware(
            BodySizeLimitMiddleware,
            max_body_size=settings.max_body_size,
            path_limits=[
                *(
                    (
                        m,
                        compile_path(p)[0],
                        settings.max_attachment_bytes,
                        "DAKERA_MAX_ATTACHMENT_BYTES",
                    )
                    for m, p in RAW_BODY_ROUTES
                ),
                *(
                    ("POST", compile_path(p)[0], settings.max_upload_size, "DAKERA_MAX_UPLOAD_SIZE")
                    for p in sorted(FILE_PATHS)
                ),
            ],
            # Outside the audit layer, so it audits the 413s it answers itself.
            on_refusal=None
            if audit_log is None
            else refusal_auditor(
                audit_log,
                exclude_paths=settings.audit_exclude_paths,
                response_body=settings.audit_response_body,
                max_body_size=settings.audit_max_body_size,
            ),
        ),
        *audit_layer,
        Middleware(
            AuthenticationMiddleware,
            authenticate=keyring.authenticate,
            public_paths=public_paths(app),
            enabled=settings.auth_enabled,
            allowed_hosts=frozenset(settings.allowed_hosts),
            record_usage=engine.keys.usage.record,
            off_loop=engine.follower is not None,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            exempt_paths=public_paths(app),
            # MCP tool calls are counted as the REST requests they make (mcp/http.py).
            exempt_prefixes=MCP_PREFIXES if mcp_endpoint else (),
        ),
        Middleware(
            BackpressureMiddleware,
            max_in_flight=settings.max_concurrent_requests,
            exempt_paths=public_paths(app),
        ),
        Middleware(
            InputValidationMiddleware,
            route_paths=sorted({route.path for route in app.state.scope_table}),
            # MCP tool arguments are checked as the REST bodies they become.
            opaque_body_prefixes=MCP_PREFIXES if mcp_endpoint else (),
            # Attachment uploads are bytes; imports and backup uploads are checked row by row
            # (or verified whole) by their routes, with this layer's validator.
            raw_body_routes=[*RAW_BODY_ROUTES, *(("POST", p) for p in sorted(FILE_PATHS))],
            file_fields=FILE_FIELDS,
        ),
        Middleware(MaintenanceGateMiddleware, gate=engine.portability.gate),
    ]
    return app
