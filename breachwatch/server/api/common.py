"""What every API module shares: the error responses each route declares."""
from __future__ import annotations

from typing import Any

from breachwatch.server.api.models import Error



def _err(description: str) -> dict[str, Any]:
    # errors are JSON even where the route's success answer is not (metrics, downloads, exports)
    return {"model": Error, "description": description, "content": {"application/json": {}}}


AUTH = {401: _err("No API key, or one that is unknown, revoked or expired."),
        403: _err("The key's roles do not allow this."),
        400: _err("The request body is not what the route takes.")}
NOT_FOUND = {404: _err("No such object.")}
CONFLICT = {409: _err("Not possible in the object's current state.")}
UNAVAILABLE = {503: _err("The store or the audit trail cannot be written.")}


def responses(*groups: dict[int, Any]) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for g in (AUTH, UNAVAILABLE, *groups):
        out.update(g)
    return out
