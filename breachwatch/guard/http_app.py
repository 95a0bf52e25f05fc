"""The guard as an HTTP service: Envoy ext_authz, nginx auth_request, a JSON
check API, the ledger's write API for issuers, health and metrics.

    /envoy/ext_authz/<original path>   Envoy ext_authz http_service (path_prefix: /envoy/ext_authz)
    /nginx/auth                        nginx auth_request target
    POST /v1/check                     {"authorization"|"token", "method", "path", "src_ip", "user_agent"}
    POST /v1/ledger/issued             issuers record tokens            (needs the API token)
    POST /v1/ledger/revoke             revoke a token or a subject      (needs the API token)
    POST /v1/keys/retire               retire a kid                     (needs the API token)
    POST /v1/reload                    reload keys and retired kids now (needs the API token; SIGHUP does the same)
    GET  /healthz, GET /metrics

The write API is off unless an API token is configured: whoever can write the
ledger can make a forged token pass, so it is never open by default.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from breachwatch.guard.adapters import (ENVOY_PREFIX, NGINX_PATH, asgi_headers, asgi_send_decision, envoy_request,
                                        nginx_request)
from breachwatch.guard.check import AsyncGuard
from breachwatch.guard.config import GuardConfig
from breachwatch.guard.decision import CheckRequest
from breachwatch.guard.events import DenialRecorder, EndpointNamer
from breachwatch.guard.keyset import KeyRing
from breachwatch.guard.ledger import AsyncIssuanceLedger, IssuanceLedger, LedgerEntry, LedgerUnavailable
from breachwatch.guard.spool import EventSpool
from breachwatch.guard.tokens import MalformedToken, parse_token


@dataclass
class GuardService:
    """Everything one running guard holds; built by `build_service`, owned by the app's lifespan."""
    config: GuardConfig
    keyring: KeyRing
    guard: AsyncGuard
    writer: IssuanceLedger
    spool: EventSpool | None
    api_token: str | None
    started_at: float = field(default_factory=time.time)
    reloads: int = 0

    async def reload(self, force: bool = False) -> bool:
        changed = await asyncio.to_thread(self.keyring.refresh, force)
        await self.guard.refresh_retired()
        self.reloads += 1
        return changed

    async def close(self) -> None:
        await self.guard.ledger.close()
        self.writer.close()
        if self.spool is not None:
            await asyncio.to_thread(self.spool.close)


def build_service(config: GuardConfig, api_token: str | None = None, keyring: KeyRing | None = None) -> GuardService:
    """Load keys (failing loudly if they cannot be loaded), connect the ledger, open the spool."""
    from breachwatch.contract.catalog import load_catalog

    if config.verify_signatures and config.jwks is None and keyring is None:
        raise ValueError("the guard verifies signatures but has no JWKS. Fix: pass --jwks FILE|URL, or set "
                         "'verify_signatures: false' (ledger-only) when the gateway verifies signatures itself.")
    keyring = keyring or KeyRing(config.jwks, config.jwks_refresh_s, config.retired_kids)
    keyring.load()
    spool = None
    recorder = None
    if config.spool_dir:
        spool = EventSpool(config.spool_dir, rotate_bytes=config.spool_rotate_bytes, rotate_s=config.spool_rotate_s)
        catalog = None
        if config.catalog:
            catalog = load_catalog(None if config.catalog == "default" else config.catalog)
        namer = EndpointNamer(catalog)
        recorder = DenialRecorder(spool.append, namer)
    ledger = AsyncIssuanceLedger(config.redis_url, config.redis_prefix, config.redis_timeout_ms)
    guard = AsyncGuard(config, keyring, ledger, recorder)
    writer = IssuanceLedger(config.redis_url, config.redis_prefix, max(config.redis_timeout_ms, 1000), config.leeway_s)
    return GuardService(config, keyring, guard, writer, spool, api_token)


class GatewayFastPath:
    """The two endpoints gateways call on every request, served as plain ASGI.

    They take no body and need no validation, routing or serialisation, so
    FastAPI's machinery would be most of their cost; everything else (the JSON
    API, the write API, health, metrics, lifespan) goes to the FastAPI app.
    """

    def __init__(self, app: FastAPI, guard: AsyncGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == NGINX_PATH or path == ENVOY_PREFIX or path.startswith(ENVOY_PREFIX + "/"):
                headers, peer = asgi_headers(scope)
                if path == NGINX_PATH:
                    req = nginx_request(headers, peer)
                else:
                    req = envoy_request(scope["method"], path, headers, peer)
                await asgi_send_decision(send, await self.guard.check(req))
                return
        await self.app(scope, receive, send)


def create_app(service: GuardService) -> GatewayFastPath:
    """The guard's ASGI application: the gateway fast path in front of the FastAPI app."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.reload()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(service.reload(force=True)))

        async def reload_forever() -> None:
            while True:
                await asyncio.sleep(service.config.reload_s)
                try:
                    await service.reload()
                except Exception as e:  # a reload must never take the guard down
                    print(f"breachwatch guard: reload failed: {e}", file=sys.stderr)

        task = asyncio.create_task(reload_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await service.close()

    app = FastAPI(title="breachwatch guard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    guard = service.guard

    @app.post("/v1/check")
    async def check(body: dict[str, Any] = Body(...)) -> JSONResponse:
        auth = body.get("authorization")
        if auth is None and body.get("token"):
            auth = f"Bearer {body['token']}"
        req = CheckRequest(auth, str(body.get("method", "GET")).upper(), str(body.get("path", "/")),
                           body.get("src_ip"), body.get("user_agent"))
        return JSONResponse((await guard.check(req)).as_dict())

    def require_admin(request: Request) -> None:
        if not service.api_token:
            raise HTTPException(403, "the guard's write API is disabled. Fix: start the guard with "
                                     "BREACHWATCH_GUARD_API_TOKEN set (or --api-token-file).")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {service.api_token}".encode()):
            raise HTTPException(401, "wrong or missing API token")

    @app.post("/v1/ledger/issued")
    def issued(request: Request, body: Any = Body(...)) -> dict[str, Any]:
        require_admin(request)
        items = body if isinstance(body, list) else [body]
        entries = [_entry_from_body(item, service) for item in items]
        return {"recorded": service.writer.record_many(entries), "received": len(entries)}

    @app.post("/v1/ledger/revoke")
    def revoke(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        require_admin(request)
        reason = str(body.get("reason") or "revoked")
        if body.get("subject"):
            service.writer.revoke_subject(str(body["subject"]), body.get("issued_before"))
            return {"revoked_subject": body["subject"]}
        token_id = body.get("token_id")
        if token_id is None and body.get("token"):
            token_id = _parse_or_400(body["token"]).token_id
        if not token_id:
            raise HTTPException(400, "give 'token_id', 'token' or 'subject'")
        service.writer.revoke(str(token_id), reason, body.get("expires_at"))
        return {"revoked": token_id}

    @app.post("/v1/keys/retire")
    async def retire(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        require_admin(request)
        kid = body.get("kid")
        if not kid:
            raise HTTPException(400, "give 'kid'")
        await asyncio.to_thread(service.writer.retire_kid, str(kid))
        await service.reload()
        return {"retired": kid}

    @app.post("/v1/reload")
    async def reload(request: Request) -> dict[str, Any]:
        require_admin(request)
        changed = await service.reload(force=True)
        return {"keys_changed": changed, "key_set_version": service.keyring.snapshot.version,
                "last_error": service.keyring.last_error}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            await guard.ledger.redis.ping()
            ledger_ok = True
        except Exception:
            ledger_ok = False
        body = {"ledger": ledger_ok, "keys": len(service.keyring.snapshot.keys), "mode": service.config.mode,
                "enforcing": guard.enforcing(time.time()), "key_error": service.keyring.last_error}
        return JSONResponse(body, status_code=200 if ledger_ok else 503)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        lines = ["# TYPE breachwatch_guard_decisions_total counter"]
        for (allow, reason, would), n in sorted(guard.counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
            lines.append(f'breachwatch_guard_decisions_total{{decision="{"allow" if allow else "deny"}",'
                         f'reason="{reason}",would_deny="{would or ""}"}} {n}')
        spool = service.spool
        lines += [f"breachwatch_guard_events_spooled_total {spool.written if spool else 0}",
                  f"breachwatch_guard_events_dropped_total {spool.dropped if spool else 0}",
                  f"breachwatch_guard_keyset_version {service.keyring.snapshot.version}",
                  f"breachwatch_guard_keys_active {len(service.keyring.snapshot.keys)}",
                  f"breachwatch_guard_keys_retired {len(service.keyring.retired)}",
                  f"breachwatch_guard_key_reload_failing {1 if service.keyring.last_error else 0}"]
        return PlainTextResponse("\n".join(lines) + "\n")

    return GatewayFastPath(app, guard)


def _parse_or_400(token: str) -> Any:
    try:
        return parse_token(token)
    except MalformedToken as e:
        raise HTTPException(400, f"token: {e}") from e


def _entry_from_body(item: Any, service: GuardService) -> LedgerEntry:
    """A ledger entry from {"token": ...} (claims read from the token, signature checked when keys are
    loaded) or from {"token_id"|"jti", "sub", "kid", "exp", "iat", "source"}."""
    if not isinstance(item, dict):
        raise HTTPException(400, "each item must be an object")
    source = str(item.get("source") or "api")
    if item.get("token"):
        p = _parse_or_400(str(item["token"]))
        if service.config.verify_signatures:
            d = service.guard.verify_token(str(item["token"]))
            if d.reason is not None:
                raise HTTPException(400, f"token not recorded: {d.reason} ({d.detail})")
        exp = p.numeric("exp")
        if exp is None:
            raise HTTPException(400, "token not recorded: it has no exp")
        iat = p.numeric("iat")
        return LedgerEntry(p.token_id, p.subject, p.kid, int(exp), int(iat) if iat else None, source)
    token_id = item.get("token_id") or item.get("jti")
    if not token_id or item.get("exp") is None:
        raise HTTPException(400, "give 'token', or 'token_id' (or 'jti') with 'sub', 'kid' and 'exp'")
    try:
        exp = int(item["exp"])
        iat = int(item["iat"]) if item.get("iat") is not None else None
    except (TypeError, ValueError) as e:
        raise HTTPException(400, f"exp and iat must be epoch seconds ({e})") from e
    sub = item.get("sub")
    return LedgerEntry(str(token_id), None if sub is None else str(sub), item.get("kid"), exp, iat, source)


__all__ = ["GuardService", "LedgerUnavailable", "build_service", "create_app"]
