"""Envoy ext_authz and nginx auth_request request/response contracts, the write API,
and the denial events the guard spools for ingest."""
from __future__ import annotations

import subprocess
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from breachwatch.guard.http_app import build_service, create_app
from breachwatch.guard.tokens import parse_token
from breachwatch.ingest.pipeline import ingest_paths
from guard_helpers import SHARED_REDIS, Issuer, config, make_key, shared_ledger, sign, unique_prefix, write_jwks  # noqa: F401

API_TOKEN = "t0p-secret-for-tests"


@pytest.fixture
def gw(tmp_path, shared_ledger):
    keys = {"login-2024": make_key("RSA", "login-2024"), "sso-1": make_key("EC", "sso-1")}
    jwks = write_jwks(tmp_path / "jwks.json", list(keys.values()))
    cfg = config(mode="enforce", enforce_from="2020-01-01T00:00:00Z", jwks=str(jwks), ledger_lag_ms=0,
                 redis_url=SHARED_REDIS, redis_prefix=shared_ledger.prefix, spool_dir=str(tmp_path / "spool"),
                 catalog="default", routes=[{"prefix": "/api/products/", "allow_anonymous": True}])
    service = build_service(cfg, api_token=API_TOKEN)
    with TestClient(create_app(service)) as client:
        client.issuer = Issuer(keys, shared_ledger)
        client.service = service
        client.keys = keys
        client.spool_dir = tmp_path / "spool"
        yield client


def envoy(client, token, method="GET", path="/api/me/addresses", **headers):
    h = {"x-forwarded-for": "198.51.100.20, 203.0.113.77", "user-agent": "okhttp/4.12", **headers}
    if token:
        h["authorization"] = f"Bearer {token}"
    # Envoy sends the original method and path behind path_prefix, with no body.
    return client.request(method, "/envoy/ext_authz" + path, headers=h)


def nginx(client, token, uri="/api/me/orders?page=2", method="GET"):
    h = {"x-original-uri": uri, "x-original-method": method, "x-real-ip": "192.0.2.44", "user-agent": "Mozilla/5.0"}
    if token:
        h["authorization"] = f"Bearer {token}"
    return client.get("/nginx/auth", headers=h)


def test_envoy_allows_with_200_and_passes_the_confirmed_subject_upstream(gw):
    token = gw.issuer.login("1001", "login-2024")
    r = envoy(gw, token)
    assert r.status_code == 200
    assert r.headers["x-breachwatch-decision"] == "allow"
    assert r.headers["x-breachwatch-reason"] == "ok"
    assert r.headers["x-breachwatch-subject"] == "1001"
    r = envoy(gw, token, method="POST", path="/api/me/addresses/77?x=1")
    assert r.status_code == 200


def test_envoy_denies_a_forged_token_with_401_and_a_body_for_the_client(gw):
    forged = sign(gw.keys["login-2024"], gw.issuer.claims("2000417"))
    r = envoy(gw, forged)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="not_in_ledger"'
    assert r.json() == {"error": "invalid_token", "reason": "not_in_ledger"}
    assert "x-breachwatch-subject" not in r.headers
    no_token = envoy(gw, None)
    assert (no_token.status_code, no_token.headers["www-authenticate"]) == (401, "Bearer")


def test_shadow_allow_never_vouches_for_the_subject(gw, tmp_path, shared_ledger):
    cfg = config(jwks=str(write_jwks(tmp_path / "shadow.json", list(gw.keys.values()))),
                 redis_url=SHARED_REDIS, redis_prefix=shared_ledger.prefix, ledger_lag_ms=0)
    with TestClient(create_app(build_service(cfg))) as shadow:
        forged = sign(gw.keys["login-2024"], gw.issuer.claims("2000417"))
        r = envoy(shadow, forged, **{"x-breachwatch-subject": "2000417"})
        assert r.status_code == 200
        assert r.headers["x-breachwatch-would-deny"] == "not_in_ledger"
        # Empty, so the gateway overwrites whatever subject header the client sent.
        assert r.headers["x-breachwatch-subject"] == ""


def test_nginx_auth_request_answers_only_2xx_401_or_403(gw):
    token = gw.issuer.login("42", "sso-1")
    assert nginx(gw, token).status_code == 200
    assert nginx(gw, sign(make_key("EC", "sso-1"), gw.issuer.claims("42"))).status_code == 401
    assert nginx(gw, "garbage").status_code == 401
    assert nginx(gw, None, uri="/api/products/9").status_code == 200  # anonymous route
    gw.service.writer.revoke(parse_token(token).token_id, "password reset")
    r = nginx(gw, token)
    assert (r.status_code, r.headers["x-breachwatch-reason"]) == (401, "revoked")


def test_denials_become_token_denied_events_that_ingest_loads(gw, tmp_path, store):
    forged = sign(gw.keys["login-2024"], gw.issuer.claims("2000417"))
    envoy(gw, forged, path="/api/members/2000417/profile")
    nginx(gw, forged, uri="/api/me/orders?access_token=leak")
    assert gw.service.spool.flush()
    gw.service.spool.close()
    files = sorted(gw.spool_dir.glob("*.ndjson"))
    assert files, "closing the spool publishes its file"
    con, path = store
    summary = ingest_paths(con, path, [str(gw.spool_dir)])
    assert summary.as_dict()["loaded"] == 2
    rows = con.execute(
        "SELECT principal_id, key_id, token_id, src_ip, user_agent, endpoint, "
        "json_extract_string(attributes, '$.reason'), json_extract_string(attributes, '$.mode'), "
        "json_extract_string(attributes, '$.path'), token_expires_at IS NOT NULL "
        "FROM events WHERE kind = 'token_denied' ORDER BY endpoint").fetchall()
    jti = parse_token(forged).token_id
    assert rows == [
        ("2000417", "login-2024", jti, "192.0.2.44", "Mozilla/5.0", "GET /api/me/orders",
         "not_in_ledger", "enforce", None, True),
        ("2000417", "login-2024", jti, "203.0.113.77", "okhttp/4.12", "GET /api/members/{memberId}/profile",
         "not_in_ledger", "enforce", "/api/members/2000417/profile", True),
    ]
    raw = b"".join(f.read_bytes() for f in files)
    assert b"leak" not in raw, "query strings never reach the events"


def test_write_api_needs_the_api_token(gw):
    claims = gw.issuer.claims("555")
    token = sign(gw.keys["sso-1"], claims)
    assert gw.post("/v1/ledger/issued", json={"token": token}).status_code == 401
    assert gw.post("/v1/ledger/issued", json={"token": token},
                   headers={"authorization": "Bearer wrong"}).status_code == 401
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    r = gw.post("/v1/ledger/issued", json={"token": token, "source": "sso"}, headers=auth)
    assert r.json() == {"recorded": 1, "received": 1}
    assert envoy(gw, token).status_code == 200
    # A token whose signature does not verify is not recorded.
    bad = sign(make_key("EC", "sso-1"), gw.issuer.claims("556"))
    assert gw.post("/v1/ledger/issued", json={"token": bad}, headers=auth).status_code == 400
    # Claims form, as issuers that keep no token text send it.
    c2 = gw.issuer.claims("557")
    t2 = sign(gw.keys["login-2024"], c2)
    body = [{"jti": c2["jti"], "sub": "557", "kid": "login-2024", "exp": c2["exp"], "iat": c2["iat"],
             "source": "partner_oauth"}]
    assert gw.post("/v1/ledger/issued", json=body, headers=auth).json()["recorded"] == 1
    assert envoy(gw, t2).status_code == 200
    assert gw.post("/v1/ledger/revoke", json={"token": t2, "reason": "partner offboarded"},
                   headers=auth).status_code == 200
    assert envoy(gw, t2).headers["x-breachwatch-reason"] == "revoked"
    assert gw.post("/v1/ledger/revoke", json={"subject": "555"}, headers=auth).status_code == 200
    assert envoy(gw, token).headers["x-breachwatch-reason"] == "subject_revoked"


def test_retiring_a_key_over_the_api_takes_effect_at_once(gw):
    token = gw.issuer.login("1", "sso-1")
    assert envoy(gw, token).status_code == 200
    r = gw.post("/v1/keys/retire", json={"kid": "sso-1"}, headers={"authorization": f"Bearer {API_TOKEN}"})
    assert r.status_code == 200
    assert envoy(gw, token).headers["x-breachwatch-reason"] == "kid_retired"


def test_json_check_api_metrics_and_health(gw):
    token = gw.issuer.login("1001", "login-2024")
    d = gw.post("/v1/check", json={"token": token, "method": "get", "path": "/api/me/profile"}).json()
    assert (d["allow"], d["reason"], d["subject"]) == (True, "ok", "1001")
    expired = gw.issuer.login("1001", "login-2024", now=time.time() - 5000)
    d = gw.post("/v1/check", json={"authorization": f"Bearer {expired}"}).json()
    assert (d["allow"], d["reason"]) == (False, "expired")
    metrics = gw.get("/metrics").text
    assert 'breachwatch_guard_decisions_total{decision="deny",reason="expired",would_deny=""} 1' in metrics
    assert "breachwatch_guard_keys_active 2" in metrics
    health = gw.get("/healthz")
    assert health.status_code == 200 and health.json()["ledger"] is True and health.json()["enforcing"] is True


def test_write_api_is_off_without_a_configured_token(tmp_path, shared_ledger):
    key = make_key("OKP", "ed")
    cfg = config(jwks=str(write_jwks(tmp_path / "j.json", [key])), redis_prefix=shared_ledger.prefix)
    with TestClient(create_app(build_service(cfg))) as client:
        r = client.post("/v1/ledger/issued", json={"token": "x"}, headers={"authorization": "Bearer "})
        assert r.status_code == 403
        assert "disabled" in r.json()["detail"]


def test_hostile_claims_do_not_get_the_event_quarantined(gw, store):
    # A token claiming times past 2100 (the store's range): its event must still load.
    envoy(gw, sign(gw.keys["sso-1"], gw.issuer.claims("9", exp=4_200_000_000, iat=4_199_999_000)))
    envoy(gw, sign(gw.keys["sso-1"], gw.issuer.claims("x" * 5000)))
    gw.service.spool.close()
    lines = [orjson.loads(line) for f in sorted(gw.spool_dir.glob("*.ndjson")) for line in f.read_bytes().splitlines()]
    assert len(lines) == 2
    assert "token_expires_at" not in lines[0] and lines[0]["attributes"]["claimed_exp"] == 4_200_000_000
    con, path = store
    summary = ingest_paths(con, path, [str(gw.spool_dir)]).as_dict()
    assert (summary["loaded"], summary["quarantined"]) == (2, 0)
    assert con.execute("SELECT max(length(principal_id)) FROM events").fetchone()[0] == 512


def test_spool_publishes_a_crashed_writers_file_but_not_a_live_ones(tmp_path):
    from breachwatch.guard.spool import EventSpool

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    crashed = spool_dir / "token_denied-20250601T000000000000Z-999999999-000001.ndjson.open"
    crashed.write_bytes(b'{"kind":"token_denied"}\n')
    live = subprocess.Popen(["sleep", "30"])
    try:
        running = spool_dir / f"token_denied-20250601T000000000000Z-{live.pid}-000001.ndjson.open"
        running.write_bytes(b"")
        spool = EventSpool(spool_dir)
        spool.append({"kind": "token_denied", "n": 1})
        spool.close()
        names = sorted(p.name for p in spool_dir.iterdir())
        assert crashed.with_name(crashed.name.replace(".open", "")).name in names
        assert running.name in names  # still open: its writer is alive
        assert sum(1 for n in names if n.endswith(".ndjson")) == 2
    finally:
        live.kill()
        live.wait()
