"""Which methods a path accepts: the ``Allow`` header every 405 answer must carry (RFC 9110).

The router only knows the one route it matched by path, and FastAPI and Starlette each name
only that route's methods (or none, once a handler has made the problem body), so a path
served by several routes (``GET`` and ``POST /api/persons``) would list half of them. Asking
every route whether it takes the path with each method gives the whole answer, for API,
console and publishing routes alike. It runs only for 405 answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_STATIC_METHODS = frozenset({"GET", "HEAD"})


def allowed_methods(routes: Sequence[BaseRoute], path: str, root_path: str = "") -> list[str]:
    """The methods of :data:`METHODS` that some route accepts at ``path`` (as requested)."""
    probe: Scope = {"type": "http", "path": path, "root_path": root_path, "headers": []}
    return [
        method
        for method in METHODS
        if any(_accepts(route, {**probe, "method": method}) for route in routes)
    ]


def _accepts(route: BaseRoute, scope: Scope) -> bool:
    match, _ = route.matches(scope)
    if match is not Match.FULL:
        return False
    if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
        return scope["method"] in _STATIC_METHODS  # a mount matches any method; files do not
    return True
