"""Route declaration with a mandatory scope, and the one route → scope table derived from it.

Every route is declared through ``Routes.get/post/…`` which *requires* ``scope=``; the scope is
attached to the route as a dependency (checked per request) and recorded, so ``scope_table``
can walk the app and ``create_app`` fails if any route lacks one (STYLE habits 11-12).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request

from dakera_server.engine.access import ANONYMOUS, Caller, Scope
from dakera_server.errors import Forbidden, Unauthorized, Unavailable

__all__ = ["RouteScope", "Routes", "Scope", "current_caller", "scope_table"]

SCOPE_KEY = "x-dakera-scope"
MAINTENANCE_RETRY_SECONDS = 30
UNRESTRICTED_KEY = "x-dakera-unrestricted"


@dataclass(frozen=True)
class RouteScope:
    """What one route needs: a scope, and whether the key must be unrestricted (global)."""

    method: str
    path: str
    scope: Scope
    unrestricted: bool


def current_caller(request: Request) -> Caller:
    """The caller the auth layer put on the request (anonymous when none)."""
    caller = request.scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else ANONYMOUS


async def _refuse_writes_in_maintenance(request: Request) -> None:
    """Maintenance mode (on any node of a shared store: it is kept in the store) refuses the
    data writes, 503 with ``Retry-After``; reads keep working (``reject_requests`` refuses
    them too, earlier, in the metering layer). On a shared store the node first catches up
    with the store's meta rows (one head read, off the event loop), so a write on any node
    right after maintenance was enabled on another is refused."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return
    if engine.follower is not None:
        await anyio.to_thread.run_sync(engine.follower.sync_meta)
    maintenance = engine.ops.maintenance
    if maintenance is not None and maintenance.enabled and maintenance.active():
        raise Unavailable(
            "the server is in maintenance mode: writes are refused, reads keep working",
            retry_after=MAINTENANCE_RETRY_SECONDS,
            details=maintenance.reason,
        )


def requires(scope: Scope, *, unrestricted: bool = False) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency that lets the request through only for a caller holding ``scope``."""

    # async: FastAPI runs a sync dependency in a worker thread, two thread hand-offs per request
    # for a dictionary lookup (measured as the largest fixed cost of a vector query).
    async def check(request: Request) -> Caller:
        caller = current_caller(request)
        if scope is Scope.PUBLIC:
            return caller
        if caller.scope is Scope.PUBLIC:
            raise Unauthorized("an API key is required")
        if not caller.has(scope):
            raise Forbidden(f"this route needs the '{scope.wire}' scope")
        if unrestricted and not caller.unrestricted:
            raise Forbidden(f"this route needs an unrestricted '{scope.wire}' key")
        if scope is Scope.WRITE:
            await _refuse_writes_in_maintenance(request)
        return caller

    check.__name__ = f"requires_{scope.wire}"
    return check


class Routes:
    """Route declarations whose every entry must name its scope.

    Declarations are collected here and added to the app by ``mount`` (``app.add_api_route``),
    so each served route is a plain ``APIRoute`` carrying its scope. A path under ``/v1/admin``
    is also served under ``/admin`` (the real server mounts both, dakera-api.md §1.2).
    """

    def __init__(self) -> None:
        self.declared: list[tuple[str, str, Callable[..., Any], Scope, bool, dict[str, Any]]] = []

    def add(
        self,
        method: str,
        path: str,
        *,
        scope: Scope,
        unrestricted: bool = False,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``endpoint`` for ``method path`` needing ``scope``."""

        def decorator(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            self.declared.append((method, path, endpoint, scope, unrestricted, kwargs))
            return endpoint

        return decorator

    def mount(self, app: FastAPI) -> None:
        """Add every declared route to ``app``."""
        for method, path, endpoint, scope, unrestricted, kwargs in self.declared:
            paths = [path]
            if path.startswith("/v1/admin/"):
                paths.append(path[len("/v1") :])
            for each in paths:
                app.add_api_route(
                    each,
                    endpoint,
                    methods=[method],
                    dependencies=[Depends(requires(scope, unrestricted=unrestricted))],
                    # The scope also travels in the OpenAPI extra, so the served document shows it.
                    openapi_extra={SCOPE_KEY: scope.wire, UNRESTRICTED_KEY: unrestricted},
                    **kwargs,
                )

    def get(self, path: str, *, scope: Scope, **kw: Any) -> Callable[..., Any]:
        """Declare a GET route."""
        return self.add("GET", path, scope=scope, **kw)

    def post(self, path: str, *, scope: Scope, **kw: Any) -> Callable[..., Any]:
        """Declare a POST route."""
        return self.add("POST", path, scope=scope, **kw)

    def put(self, path: str, *, scope: Scope, **kw: Any) -> Callable[..., Any]:
        """Declare a PUT route."""
        return self.add("PUT", path, scope=scope, **kw)

    def patch(self, path: str, *, scope: Scope, **kw: Any) -> Callable[..., Any]:
        """Declare a PATCH route."""
        return self.add("PATCH", path, scope=scope, **kw)

    def delete(self, path: str, *, scope: Scope, **kw: Any) -> Callable[..., Any]:
        """Declare a DELETE route."""
        return self.add("DELETE", path, scope=scope, **kw)


def scope_table(app: FastAPI) -> list[RouteScope]:
    """Every API route with its declared scope; raises if one has none (a build error)."""
    table: list[RouteScope] = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        extra = route.openapi_extra or {}
        if SCOPE_KEY not in extra:
            raise RuntimeError(f"route {route.path} has no declared scope")
        scope = Scope[str(extra[SCOPE_KEY]).upper()]
        for method in sorted(route.methods or ()):
            table.append(RouteScope(method, route.path, scope, bool(extra[UNRESTRICTED_KEY])))
    return table


def public_paths(app: FastAPI) -> frozenset[str]:
    """Paths whose every route is public: the auth layer lets them through without a key."""
    return frozenset(r.path for r in scope_table(app) if r.scope is Scope.PUBLIC)
