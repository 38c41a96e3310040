"""Moving hot routes to the front must not change which route answers any request."""

from __future__ import annotations

import itertools
from pathlib import Path

from starlette.routing import BaseRoute, Match, Route

from dakera_server.api.routeorder import HOT_PATHS, hot_routes_first, may_collide
from dakera_server.app import create_app
from dakera_server.config import Settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _first_match(routes: list[BaseRoute], path: str, method: str) -> tuple[str, str]:
    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return ("full", getattr(route, "path", "?") + repr(getattr(route, "methods", None)))
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "path", "?") + repr(getattr(route, "methods", None))
    return ("partial", partial or "none")


def _samples(templates: list[str]) -> set[str]:
    """Each template with its parameters filled, and filled with the static segments another
    template has at the same positions (so static/parameter overlaps are exercised)."""
    out = set()
    for template in templates:
        segments = template.strip("/").split("/")
        out.add("/" + "/".join("x1" if "{" in s else s for s in segments))
        for other in templates:
            theirs = other.strip("/").split("/")
            if len(theirs) != len(segments):
                continue
            filled = [
                (t if "{" not in t else "x1") if "{" in s else s
                for s, t in zip(segments, theirs, strict=True)
            ]
            out.add("/" + "/".join(filled))
    return out


def test_every_request_reaches_the_route_it_reached_before(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DAKERA_DATA_DIR": str(tmp_path), "DAKERA_ROOT_API_KEY": "k" * 40}
    )
    app = create_app(settings)
    reordered = list(app.router.routes)
    templates = [r.path for r in reordered if isinstance(r, Route)]
    declared = _declared_order(app)
    moved = [r.path for r in reordered[: len(HOT_PATHS)] if isinstance(r, Route)]
    assert moved and set(moved) <= set(HOT_PATHS)  # the vector hot paths did move
    for path, method in itertools.product(sorted(_samples(templates)), METHODS):
        assert _first_match(reordered, path, method) == _first_match(declared, path, method), (
            path,
            method,
        )


def _declared_order(app: object) -> list[BaseRoute]:
    """The routes in the order ``mount`` added them, before ``hot_routes_first``."""
    from fastapi import FastAPI

    from dakera_server.api.console.routes import console_routes
    from dakera_server.app import ROUTERS

    plain = FastAPI()
    for module in ROUTERS:
        module.routes.mount(plain)
    console_routes(auth_enabled=True).mount(plain)  # create_app mounts the console last
    paths = [
        (getattr(r, "path", None), frozenset(getattr(r, "methods", None) or ()))
        for r in plain.router.routes
    ]
    by_key = {
        (getattr(r, "path", None), frozenset(getattr(r, "methods", None) or ())): r
        for r in app.router.routes  # type: ignore[attr-defined]
    }
    declared = [by_key[key] for key in paths if key in by_key]
    # Routes create_app adds after the routers (the MCP endpoint) keep their place at the end.
    return declared + [route for key, route in by_key.items() if key not in set(paths)]


def test_may_collide() -> None:
    assert may_collide("/v1/memory/recall", "/v1/memory/{id}")
    assert may_collide("/a/{x}/b", "/a/c/{y}")
    assert not may_collide("/v1/namespaces/{ns}/query", "/v1/namespaces/{ns}/hybrid")
    assert not may_collide("/v1/namespaces/{ns}/query", "/v1/namespaces/{ns}")
    assert may_collide("/files/{rest:path}", "/files/a/b")


def test_a_hot_route_never_jumps_a_route_it_may_collide_with() -> None:
    routes: list[BaseRoute] = [
        Route("/v1/namespaces/{namespace}/{action}", lambda r: None, methods=["POST"]),
        Route("/v1/namespaces/{namespace}/query", lambda r: None, methods=["POST"]),
    ]
    hot_routes_first(routes)
    assert [r.path for r in routes if isinstance(r, Route)] == [
        "/v1/namespaces/{namespace}/{action}",
        "/v1/namespaces/{namespace}/query",
    ]
