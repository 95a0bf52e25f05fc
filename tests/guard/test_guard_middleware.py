"""The guard inside Python services: ASGI and WSGI middleware."""
from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from breachwatch.guard.check import AsyncGuard, Guard
from breachwatch.guard.keyset import KeyRing
from breachwatch.guard.ledger import AsyncIssuanceLedger
from breachwatch.guard.middleware import GuardMiddleware, GuardWSGIMiddleware
from guard_helpers import SHARED_REDIS, Issuer, config, make_key, shared_ledger, sign, write_jwks  # noqa: F401

SETTINGS = dict(mode="enforce", enforce_from="2020-01-01T00:00:00Z", ledger_lag_ms=0)


def _ring(tmp_path, keys):
    ring = KeyRing(str(write_jwks(tmp_path / "jwks.json", keys)))
    ring.load()
    return ring


def test_asgi_middleware_guards_a_fastapi_service(tmp_path, shared_ledger):
    key = make_key("EC", "app-ec")
    guard = AsyncGuard(config(**SETTINGS), _ring(tmp_path, [key]),
                       AsyncIssuanceLedger(SHARED_REDIS, shared_ledger.prefix, 500))
    app = FastAPI()
    app.add_middleware(GuardMiddleware, guard=guard, exempt_paths=["/health"])

    @app.get("/api/me/profile")
    async def profile(request: Request) -> dict:
        return {"subject": request.state.breachwatch.subject}

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    issuer = Issuer({"app-ec": key}, shared_ledger)
    with TestClient(app) as client:
        token = issuer.login("1001", "app-ec")
        r = client.get("/api/me/profile", headers={"authorization": f"Bearer {token}"})
        assert (r.status_code, r.json()) == (200, {"subject": "1001"})
        forged = sign(key, issuer.claims("1002"))
        r = client.get("/api/me/profile", headers={"authorization": f"Bearer {forged}"})
        assert (r.status_code, r.json()["reason"]) == (401, "not_in_ledger")
        assert client.get("/health").status_code == 200


def test_wsgi_middleware_guards_a_wsgi_service(tmp_path, shared_ledger):
    key = make_key("RSA", "app-rsa")
    guard = Guard(config(**SETTINGS), _ring(tmp_path, [key]), shared_ledger)
    seen = {}

    def app(environ, start_response):
        seen["decision"] = environ["breachwatch.decision"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok":true}']

    wrapped = GuardWSGIMiddleware(app, guard)
    issuer = Issuer({"app-rsa": key}, shared_ledger)

    def call(token):
        status = {}
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/me/orders", "REMOTE_ADDR": "10.1.2.3",
                   "HTTP_X_FORWARDED_FOR": "203.0.113.5", "HTTP_USER_AGENT": "ua"}
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        body = b"".join(wrapped(environ, lambda s, h: status.update(status=s, headers=dict(h))))
        return status["status"], status["headers"], body

    status, _, body = call(issuer.login("7", "app-rsa"))
    assert (status, body, seen["decision"].subject) == ("200 OK", b'{"ok":true}', "7")
    status, headers, body = call(sign(key, issuer.claims("8")))
    assert (status, orjson.loads(body)["reason"]) == ("401 Unauthorized", "not_in_ledger")
    assert headers["Content-Length"] == str(len(body))
    status, headers, _ = call(None)
    assert (status, headers["www-authenticate"]) == ("401 Unauthorized", "Bearer")
