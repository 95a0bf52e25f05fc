"""Request authentication and authorisation, for the API (bearer keys) and the dashboard (sessions).

The API takes only `Authorization: Bearer` keys and the dashboard only its
session cookie, so a logged-in browser cannot be tricked into calling the API
(no cookie is ever accepted there), and dashboard forms carry a CSRF token.
"""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from breachwatch.server.context import ANONYMOUS, Principal, ServerContext
from breachwatch.server.roles import allowed

SESSION_COOKIE = "bw_session"
bearer = HTTPBearer(auto_error=False, description="An API key made with 'breachwatch apikeys create'.")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def ctx_of(request: Request) -> ServerContext:
    return request.app.state.ctx


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def api_principal(request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        return ANONYMOUS
    return ctx_of(request).key_principal(creds.credentials)


def require(permission: str) -> Any:
    """A route dependency: the calling key, which must hold `permission` (401 without a key, 403 without it)."""
    def dependency(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        who = api_principal(request, creds)
        if who.anonymous:
            raise ApiError(401, "unauthenticated", "this endpoint needs an API key. Fix: send "
                           "'Authorization: Bearer <key>' with a key from 'breachwatch apikeys create'.",
                           {"WWW-Authenticate": "Bearer"})
        if not allowed(who.roles, permission):
            ctx_of(request).audit(who, "access.denied", resource=request.url.path, outcome="denied",
                                  client=client_of(request), detail={"permission": permission})
            raise ApiError(403, "forbidden", f"this key's roles ({', '.join(who.roles)}) do not include "
                           f"'{permission}'. Fix: use a key with a role that does (see docs/server.md).")
        return who
    return Depends(dependency)


def audited(request: Request, who: Principal, action: str, resource: str | None = None,
            **detail: Any) -> None:
    """Record a read of subject-level data (before it is sent)."""
    ctx_of(request).audit(who, action, resource=resource, client=client_of(request), detail=detail or None)


PermissionCheck = Callable[[Principal], bool]
