"""The FastAPI application: API, dashboard, static files, errors and security headers.

`create_app(config)` builds it; the server context (store, writer, loops)
starts with the app and stops with it, so tests run the real thing in-process
and `breachwatch serve` runs the same app under Uvicorn.
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from breachwatch import __version__
from breachwatch.server.auth import ApiError
from breachwatch.server.config import ServerConfig
from breachwatch.server.context import AuditUnavailable, ServerContext

# Scripts and styles only from this server; plotly draws with inline styles.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class SecurityHeaders:
    """Pure ASGI middleware: security headers on every answer, a count per status code, and the time from an
    ingest request's arrival to its 202 (what the server adds around the commit shows against the writer's
    own timings)."""

    def __init__(self, app: Any, tls: bool, counter: Any, ingest_latency: Any) -> None:
        self.app, self.tls, self.counter, self.ingest_latency = app, tls, counter, ingest_latency

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")
        started = time.perf_counter()
        ingest = scope.get("path") == "/v1/events" and scope.get("method") == "POST"

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                h = list(message.get("headers", []))
                h += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                      (b"referrer-policy", b"no-referrer"), (b"content-security-policy", CSP.encode()),
                      (b"cross-origin-opener-policy", b"same-origin")]
                if not static:  # answers carry personal data: never cached
                    h.append((b"cache-control", b"no-store"))
                if self.tls:
                    h.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = h
                self.counter.inc(label=str(message["status"]))
                if ingest and message["status"] == 202:
                    self.ingest_latency.observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JsonBodies:
    """Refuse a JSON body that is not strict JSON before any route reads it.

    Python's JSON reader lets through text a store and a response cannot hold (an unpaired UTF-16
    surrogate such as "\\udb15"), which then failed deep in a handler as a 500; orjson, which reads as
    strictly as the spec, names it. The bodies checked here are the API's own small documents;
    /v1/events parses its (large, NDJSON or array) bodies itself with the same reader."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE")
                or scope.get("path") == "/v1/events"
                or not dict(scope.get("headers", [])).get(b"content-type", b"").startswith(b"application/json")):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: pass it on as it came
                await self.app(scope, _replay([message]), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _error(413, "too_large", f"the body is larger than {self.limit} bytes. Fix: send less "
                             "per request.")(scope, receive, send)
                return
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as e:
                await _error(400, "bad_body", f"the body is not valid JSON ({e}). Fix: send UTF-8 JSON as the "
                             "OpenAPI spec at /openapi.json describes it.")(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _replay(messages: list[dict[str, Any]]) -> Any:
    """An ASGI receive() that hands out `messages`, then waits as a finished request's receive would."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}
    return receive


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def create_app(config: ServerConfig, *, ctx: ServerContext | None = None) -> FastAPI:
    context = ctx or ServerContext(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context.start()
        try:
            yield
        finally:
            context.stop()

    app = FastAPI(title="breachwatch", version=__version__, lifespan=lifespan,
                  description="HTTP ingest, incidents, scope and administration for breachwatch. Every call "
                              "but /healthz and /v1/lookup needs an API key (`Authorization: Bearer`); "
                              "see docs/server.md for the roles.")
    app.state.ctx = context

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # list every route's methods on this path, not only the first route's
            methods = sorted({m for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(
                request.url.path) for m in r.methods})
            headers["Allow"] = ", ".join(methods)
        return _error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(AuditUnavailable)
    async def audit_down(request: Request, exc: AuditUnavailable) -> JSONResponse:
        return _error(503, "audit_unavailable", f"{exc}; the read was refused. Fix: check the store's disk.",
                      {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": "invalid_request", "message": f"{where}: {first.get('msg', 'invalid')}. "
                             "Fix: see the OpenAPI spec at /openapi.json.",
                             "detail": jsonable_encoder(exc.errors())},
                            status_code=422)

    from breachwatch.server import api, dashboard
    api.mount(app)
    dashboard.mount(app)
    app.add_middleware(JsonBodies, limit=config.max_body_bytes)
    app.add_middleware(SecurityHeaders, tls=config.tls, counter=context.metrics.requests,
                       ingest_latency=context.metrics.ingest_request_latency)
    return app
