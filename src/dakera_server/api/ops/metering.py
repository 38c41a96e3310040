"""The metering layer: counts every HTTP request, feeds the slow-query log, and answers 503 while
maintenance mode refuses traffic.

A pure ASGI layer (STYLE habit 1) placed right inside the security headers, so it times every
other layer too and counts refusals (401, 403, 413, 429) like any answer. It learns the route
template from ``scope["route"]``, which the router sets on the very scope dict every layer
passes down, so the counters are keyed by template (``/v1/namespaces/{namespace}/query``), a
bounded set, never by raw path. The latency counted is the time to the response start (an
event stream counts its set-up, not its life).

The namespace a request concerns comes from its path parameters, or — for the memory routes
that carry it in the body — from ``agent_id`` in the first body chunk (the same bounded search
the audit layer uses). Work done per request: two clock reads, two small wrappers, one registry
call (``bench/metrics_path.py`` measures it).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.engine.access import agent_namespace
from dakera_server.engine.ops.cluster import Maintenance
from dakera_server.engine.ops.metrics import MetricsRegistry
from dakera_server.engine.ops.slowlog import SlowQueryLog
from dakera_server.errors import Unavailable
from dakera_server.security.responses import error_response
from dakera_server.security.targets import AGENT_ID_IN_JSON

__all__ = ["MAINTENANCE_OPEN_PREFIXES", "UNMATCHED", "MeteringMiddleware"]

UNMATCHED = "<unmatched>"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Memory routes whose JSON body names the agent (§3.7, §3.8).
BODY_AGENT_ROUTES = frozenset(
    {
        "/v1/memory/store",
        "/v1/memory/recall",
        "/v1/memory/search",
        "/v1/memories/store/batch",
        "/v1/memories/recall/batch",
        "/v1/memory/forget",
        "/v1/memories/forget/batch",
    }
)
# Paths that stay open in maintenance mode: probes, metrics and everything an operator needs.
MAINTENANCE_OPEN_PREFIXES = (
    "/health",
    "/metrics",
    "/admin/",
    "/v1/admin/",
    "/ops/",
    "/v1/ops/",
    "/debug/",
    "/v1/auth/",
)
MAINTENANCE_RETRY_SECONDS = 30


def _agent_in(body: bytes) -> str | None:
    found = AGENT_ID_IN_JSON.search(body)
    if found is None:
        return None
    try:
        value = orjson.loads(b'"' + found.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) and value else None


class MeteringMiddleware:
    """Pure ASGI layer: every request into ``metrics`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: MetricsRegistry,
        slowlog: SlowQueryLog,
        maintenance: Maintenance,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.slowlog = slowlog
        self.maintenance = maintenance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if (
            self.maintenance.enabled
            and self.maintenance.refusing()
            and not scope["path"].startswith(MAINTENANCE_OPEN_PREFIXES)
        ):
            refusal = Unavailable(
                "the server is in maintenance mode; retry later",
                retry_after=MAINTENANCE_RETRY_SECONDS,
                details=self.maintenance.reason,
            )
            await error_response(refusal)(scope, receive, send)
            self.metrics.observe(scope["method"], "<maintenance>", 503, 0.0)
            return
        state: list[Any] = [500, None, 0, 0, None]  # status, ms, bytes in, bytes out, 1st chunk

        async def metered_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state[0] = message["status"]
                state[1] = (time.perf_counter() - started) * 1000.0
            elif message["type"] == "http.response.body":
                state[3] += len(message.get("body", b""))
            await send(message)

        metered_receive = receive
        path: str = scope["path"]
        # Bodies are only looked at where a namespace or a slow query may need them.
        if scope["method"] in BODY_METHODS and (
            path.startswith("/v1/namespaces/") or path in BODY_AGENT_ROUTES
        ):

            async def metered_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    chunk = message.get("body", b"")
                    state[2] += len(chunk)
                    if state[4] is None:  # a body in several chunks is not parsed later
                        state[4] = b"" if message.get("more_body") else chunk
                return message

        self.metrics.in_flight += 1
        try:
            await self.app(scope, metered_receive, metered_send)
        finally:
            self.metrics.in_flight -= 1
            self._count(scope, state, started)

    def _count(self, scope: Scope, state: list[Any], started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        ms = state[1] if state[1] is not None else (time.perf_counter() - started) * 1000.0
        status = int(state[0])
        params = scope.get("path_params") or {}
        namespace = params.get("namespace")
        if namespace is None:
            agent = params.get("agent_id")
            if agent is None and template in BODY_AGENT_ROUTES and state[4]:
                agent = _agent_in(state[4])
            if isinstance(agent, str) and agent:
                namespace = agent_namespace(agent)
        kind = self.metrics.observe(
            scope["method"],
            template,
            status,
            ms,
            namespace if isinstance(namespace, str) else None,
            state[2],
            state[3],
        )
        if kind in ("recall", "query") and self.slowlog.is_slow(ms):
            body: Any = None
            if state[4]:
                try:
                    body = orjson.loads(state[4])
                except orjson.JSONDecodeError:
                    body = None
            self.slowlog.record(
                route=template,
                method=scope["method"],
                query_type=template.rsplit("/", 1)[-1],
                namespace=namespace if isinstance(namespace, str) else None,
                duration_ms=ms,
                status=status,
                body=body,
            )
