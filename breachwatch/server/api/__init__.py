"""The JSON API under /v1, with its OpenAPI spec at /openapi.json."""
from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request

from breachwatch.server.api import admin, events, health, incidents, inventory, scope
from breachwatch.server.auth import ApiError


def _query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_known: dict[int, frozenset[str]] = {}


def _known_query(route: Any) -> frozenset[str]:
    names = _known.get(id(route))
    if names is None:
        names = _known[id(route)] = frozenset(_query_names(route.dependant))
    return names


def no_unknown_query(request: Request) -> None:
    """Refuse query parameters a route does not take: a typo must not silently widen a query."""
    route = request.scope.get("route")
    extra = set(request.query_params) - (_known_query(route) if route is not None else frozenset())
    if extra:
        raise ApiError(422, "invalid_request", f"unknown query parameter {sorted(extra)[0]!r}. Fix: see the "
                       "OpenAPI spec at /openapi.json for the parameters this route takes.")


def mount(app: FastAPI) -> None:
    for module in (events, incidents, scope, inventory, admin, health):
        app.include_router(module.router, dependencies=[Depends(no_unknown_query)])
