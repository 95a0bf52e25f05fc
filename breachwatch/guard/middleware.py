"""The guard inside a Python service, for services no gateway fronts.

ASGI (FastAPI, Starlette, Django ASGI):

    app.add_middleware(GuardMiddleware, guard=AsyncGuard(config, keyring, AsyncIssuanceLedger(url)))

WSGI (Flask, Django):

    app.wsgi_app = GuardWSGIMiddleware(app.wsgi_app, Guard(config, keyring, IssuanceLedger(url)))

A denied request gets the same 401/403 answer the gateway adapters give; an
allowed one reaches the application with the decision in
`scope["state"]["breachwatch"]` (ASGI) or `environ["breachwatch.decision"]`
(WSGI), so the application can use the ledger-confirmed subject.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from breachwatch.guard.adapters import asgi_headers, asgi_send_decision, client_ip, response_for
from breachwatch.guard.check import AsyncGuard, Guard
from breachwatch.guard.decision import CheckRequest

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class GuardMiddleware:
    def __init__(self, app: ASGIApp, guard: AsyncGuard, exempt_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.guard = guard
        self.exempt = tuple(exempt_paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (self.exempt and scope["path"].startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        headers, peer = asgi_headers(scope)
        req = CheckRequest(headers.get("authorization"), scope["method"], scope["path"],
                           client_ip(headers, peer), headers.get("user-agent"))
        decision = await self.guard.check(req)
        if decision.allow:
            scope.setdefault("state", {})["breachwatch"] = decision
            await self.app(scope, receive, send)
            return
        await asgi_send_decision(send, decision)


_STATUS_TEXT = {401: "401 Unauthorized", 403: "403 Forbidden"}


class GuardWSGIMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]], guard: Guard, exempt_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.guard = guard
        self.exempt = tuple(exempt_paths)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if self.exempt and path.startswith(self.exempt):
            return self.app(environ, start_response)
        headers = {"x-forwarded-for": environ.get("HTTP_X_FORWARDED_FOR", ""),
                   "x-real-ip": environ.get("HTTP_X_REAL_IP", "")}
        req = CheckRequest(environ.get("HTTP_AUTHORIZATION"), environ.get("REQUEST_METHOD", "GET"), path,
                           client_ip({k: v for k, v in headers.items() if v}, environ.get("REMOTE_ADDR")),
                           environ.get("HTTP_USER_AGENT"))
        decision = self.guard.check(req)
        if decision.allow:
            environ["breachwatch.decision"] = decision
            return self.app(environ, start_response)
        status, hdrs, body = response_for(decision)
        start_response(_STATUS_TEXT[status], list(hdrs.items()) + [("Content-Length", str(len(body)))])
        return [body]
