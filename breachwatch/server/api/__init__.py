"""The JSON API under /v1, with its OpenAPI spec at /openapi.json."""
from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.utils import is_scalar_field

from breachwatch.server.api import admin, events, health, incidents, inventory, scope
from breachwatch.server.auth import ApiError


def _query_names(dependant: Any) -> dict[str, bool]:
    """Each query parameter a route takes, and whether it may repeat (a list parameter)."""
    names = {p.alias: not is_scalar_field(p) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names.update(_query_names(sub))
    return names


_known: dict[int, dict[str, bool]] = {}


def _known_query(route: Any) -> dict[str, bool]:
    names = _known.get(id(route))
    if names is None:
        names = _known[id(route)] = _query_names(route.dependant)
    return names


def no_unknown_query(request: Request) -> None:
    """Refuse query parameters a route does not take, and single ones given twice: a typo must not silently
    widen a query, and `?action=a&action=b` must not quietly mean only `b`."""
    route = request.scope.get("route")
    known = _known_query(route) if route is not None else {}
    extra = set(request.query_params) - set(known)
    if extra:
        raise ApiError(422, "invalid_request", f"unknown query parameter {sorted(extra)[0]!r}. Fix: see the "
                       "OpenAPI spec at /openapi.json for the parameters this route takes.")
    repeated = sorted(k for k in set(request.query_params) if not known[k]
                      and len(request.query_params.getlist(k)) > 1)
    if repeated:
        raise ApiError(422, "invalid_request", f"query parameter {repeated[0]!r} is given more than once; it takes "
                       "one value. Fix: send it once.")


def mount(app: FastAPI) -> None:
    for module in (events, incidents, scope, inventory, admin, health):
        app.include_router(module.router, dependencies=[Depends(no_unknown_query)])
