"""Redis goes down mid-run: fail-closed routes deny, fail-open routes allow (and say
so), local checks keep working, and the guard recovers when Redis returns.

Each test runs its own throwaway redis-server; the shared one is never touched.
"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from breachwatch.guard.check import Guard
from breachwatch.guard.decision import CheckRequest
from breachwatch.guard.http_app import build_service, create_app
from breachwatch.guard.keyset import KeyRing
from breachwatch.guard.ledger import IssuanceLedger
from guard_helpers import Issuer, config, make_key, sign, throwaway_redis, write_jwks  # noqa: F401

ROUTES = [{"prefix": "/api/catalog/", "fail_open": True}]


def _settings(jwks, url):
    return dict(mode="enforce", enforce_from="2020-01-01T00:00:00Z", jwks=str(jwks), redis_url=url,
                redis_timeout_ms=200, ledger_lag_ms=0, routes=ROUTES)


@pytest.fixture
def keys(tmp_path):
    k = {"rsa": make_key("RSA", "rsa"), "ed": make_key("OKP", "ed")}
    return k, write_jwks(tmp_path / "jwks.json", list(k.values()))


def test_blocking_guard_through_an_outage(keys, throwaway_redis):
    k, jwks = keys
    ledger = IssuanceLedger(throwaway_redis.url, timeout_ms=200)
    issuer = Issuer(k, ledger)
    events = []
    ring = KeyRing(str(jwks))
    ring.load()
    guard = Guard(config(**_settings(jwks, throwaway_redis.url)), ring, ledger, lambda d, r: events.append(d))
    tokens = [issuer.login(str(1000 + i), "rsa" if i % 2 else "ed") for i in range(6)]

    def run(path):
        return [guard.check(CheckRequest(f"Bearer {t}", "GET", path)) for t in tokens]

    assert {d.reason for d in run("/api/me/orders") + run("/api/catalog/items")} == {"ok"}

    throwaway_redis.stop()  # mid-run
    closed = run("/api/me/orders")
    assert {(d.allow, d.reason) for d in closed} == {(False, "ledger_unavailable")}
    opened = run("/api/catalog/items")
    assert {(d.allow, d.reason, d.would_deny) for d in opened} == {(True, "fail_open", "ledger_unavailable")}
    # Checks that need no ledger still deny on a fail-open route.
    bad = sign(make_key("RSA", "rsa"), issuer.claims("1"))
    assert guard.check(CheckRequest(f"Bearer {bad}", "GET", "/api/catalog/items")).reason == "bad_signature"
    # Every fail-closed deny and every fail-open pass is recorded for the detectors.
    assert sum(1 for d in events if d.logged_reason == "ledger_unavailable") == 12

    throwaway_redis.start()  # same port, empty: it keeps nothing on disk
    assert {d.reason for d in run("/api/me/orders")} == {"not_in_ledger"}
    fresh = issuer.login("2000", "ed")
    assert guard.check(CheckRequest(f"Bearer {fresh}", "GET", "/api/me/orders")).reason == "ok"
    ledger.close()


def test_http_guard_through_an_outage(keys, throwaway_redis, tmp_path):
    k, jwks = keys
    cfg = config(**_settings(jwks, throwaway_redis.url), spool_dir=str(tmp_path / "spool"))
    service = build_service(cfg)
    with TestClient(create_app(service)) as client:
        issuer = Issuer(k, service.writer)
        token = issuer.login("77", "rsa")

        def envoy(path):
            return client.get("/envoy/ext_authz" + path, headers={"authorization": f"Bearer {token}"})

        assert envoy("/api/me/profile").status_code == 200
        assert envoy("/api/catalog/1").status_code == 200
        throwaway_redis.stop()
        r = envoy("/api/me/profile")
        assert (r.status_code, r.headers["x-breachwatch-reason"]) == (403, "ledger_unavailable")
        r = envoy("/api/catalog/1")
        assert (r.status_code, r.headers["x-breachwatch-reason"], r.headers["x-breachwatch-would-deny"]) == (
            200, "fail_open", "ledger_unavailable")
        assert client.get("/healthz").status_code == 503
        throwaway_redis.start()
        issuer.login("78", "rsa")  # the writer reconnects too
        token = issuer.issued[-1]
        assert envoy("/api/me/profile").status_code == 200
        assert client.get("/healthz").status_code == 200
