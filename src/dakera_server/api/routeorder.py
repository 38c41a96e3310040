"""Hot routes first in the router's list, where moving them cannot change which route answers.

Starlette finds a request's route by trying the routes in order, one regex match each. With 144
routes that cost ~100 µs for a route near the end of the list, where the vector routes sat: 13 %
of the server's CPU per vector query. The routes clients call in tight loops move to the front,
each only past routes whose paths can never match the same URL, so the first route matching any
request is the one it was before (``tests/api/test_route_order.py`` checks this on every route).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Route

__all__ = ["HOT_PATHS", "hot_routes_first", "may_collide"]

HOT_PATHS = (
    "/v1/namespaces/{namespace}/query",
    "/v1/namespaces/{namespace}/vectors",
    "/v1/namespaces/{namespace}/query-text",
    "/v1/namespaces/{namespace}/upsert-text",
    "/v1/namespaces/{namespace}/hybrid",
    "/v1/namespaces/{namespace}/fulltext/search",
)


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def may_collide(a: str, b: str) -> bool:
    """Whether some URL could match both path templates (conservatively: True when unsure).

    Two templates without ``:path`` parameters collide only with the same number of segments
    and, at every position, equal static segments or a parameter on either side.
    """
    first, second = _segments(a), _segments(b)
    if any(":path}" in s for s in first + second):
        return True
    if len(first) != len(second):
        return False
    return all(x == y or "{" in x or "{" in y for x, y in zip(first, second, strict=True))


def hot_routes_first(routes: list[BaseRoute], hot: Sequence[str] = HOT_PATHS) -> None:
    """Move the routes of ``hot`` paths to the front of ``routes`` (in place), in ``hot``'s
    order, each only if no route before it may match the same URL."""
    for path in reversed(hot):
        position = next(
            (i for i, r in enumerate(routes) if isinstance(r, Route) and r.path == path), None
        )
        if position is None:
            continue
        ahead = routes[:position]
        if any(not isinstance(r, Route) or may_collide(path, r.path) for r in ahead):
            continue
        routes.insert(0, routes.pop(position))
