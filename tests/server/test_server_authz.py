"""The authorisation matrix: every role, an anonymous caller and a revoked key against every endpoint."""
from __future__ import annotations

import itertools
import re

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from server_helpers import PASSWORD, ROLES, event, make_store

from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig
from breachwatch.server.roles import PERMISSIONS, allowed

_n = itertools.count()

# (method, path, permission or None for public, json body or raw bytes)
API = [
    ("POST", "/v1/events", "events:write", orjson.dumps(event(1)) + b"\n"),
    ("GET", "/v1/incidents", "incidents:read", None),
    ("GET", "/v1/incidents/INC-000001", "incidents:read", None),
    ("GET", "/v1/incidents/INC-000001/timeline", "incidents:read", None),
    ("GET", "/v1/incidents/INC-000001/blast-radius", "incidents:read", None),
    ("POST", "/v1/incidents/INC-000001/acknowledge", "incidents:act", {"note": "x"}),
    ("POST", "/v1/incidents/INC-000001/resolve", "incidents:act", {"note": "x"}),
    ("POST", "/v1/incidents/INC-000001/false-positive", "incidents:act",
     {"scope": "pattern", "expires": "1d", "reason": "test"}),
    ("GET", "/v1/suppressions", "incidents:read", None),
    ("POST", "/v1/suppressions/no-such-suppression/lift", "incidents:act", {"reason": "test"}),
    ("GET", "/v1/alerts", "alerts:read", None),
    ("GET", "/v1/entities/principal/p1", "entities:read", None),
    ("GET", "/v1/incidents/INC-000001/scope/proposals", "scope:read", None),
    ("POST", "/v1/incidents/INC-000001/scope", "scope:decide", {"accept": []}),
    ("GET", "/v1/incidents/INC-000001/scope/runs", "scope:read", None),
    ("POST", "/v1/address-book?source=authz.csv", "scope:decide",
     b"member_id,recipient_id,valid_from\n1001,r-1,2025-04-01T00:00:00+09:00\n"),
    ("POST", "/v1/incidents/INC-000001/aware-at", "scope:decide",
     {"at": "2025-04-14T02:10:00+09:00", "reason": "test"}),
    ("POST", "/v1/incidents/INC-000001/duties", "scope:decide",
     {"duty": "pipa_regulator", "at": "2025-04-14T02:10:00+09:00"}),
    ("GET", "/v1/scope/runs/none/files/manifest.csv", "scope:read", None),
    ("GET", "/v1/subjects/1001/exposures", "subjects:lookup", None),
    ("POST", "/v1/lookup", None, {"token": "not-a-token"}),
    ("GET", "/v1/datamap", "datamap:read", None),
    ("POST", "/v1/datamap/runs", "datamap:write",
     {"run": {"run_id": "authz", "source": "authz.csv", "started_at": "2025-01-01T00:00:00Z", "status": "complete"}}),
    ("POST", "/v1/datamap/store-scan", "datamap:write", {"sample": 10, "max_seconds": 5}),
    ("GET", "/v1/keys/findings", "keyfindings:read", None),
    ("GET", "/v1/drill", "drill:read", None),
    ("GET", "/v1/admin/apikeys", "admin:apikeys", None),
    ("POST", "/v1/admin/apikeys", "admin:apikeys", {"name": "made-in-test", "roles": ["ingest"]}),
    ("DELETE", "/v1/admin/apikeys/no-such-key", "admin:apikeys", None),
    ("GET", "/v1/admin/users", "admin:users", None),
    ("POST", "/v1/admin/users", "admin:users", "new-user"),
    ("POST", "/v1/admin/users/no-such-user/disable", "admin:users", None),
    ("GET", "/v1/admin/audit", "admin:audit", None),
    ("GET", "/v1/admin/audit/export", "admin:audit", None),
    ("GET", "/v1/admin/audit/verify", "admin:audit", None),
    ("GET", "/v1/health", "metrics:read", None),
    ("GET", "/v1/verify", "store:verify", None),
    ("GET", "/metrics", "metrics:read", None),
    ("GET", "/healthz", None, None),
]

PAGES = [("/", "overview:read"), ("/incidents", "incidents:read"), ("/incidents/INC-000001", "incidents:read"),
         ("/entities/principal/p1", "entities:read"), ("/suppressions", "incidents:read"), ("/datamap", "datamap:read"), ("/keys", "keyfindings:read"),
         ("/drill", "drill:read"), ("/audit", "admin:audit")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db, keys = make_store(tmp_path_factory.mktemp("authz"))
    app = create_app(ServerConfig(db=db, detect_interval_s=0))
    with TestClient(app) as client:
        yield client, keys


def _call(client, method, path, body, headers):
    if body == "new-user":
        body = {"username": f"made-{next(_n)}", "roles": ["analyst"], "password": PASSWORD}
    if isinstance(body, bytes):
        return client.request(method, path, content=body, headers=headers)
    return client.request(method, path, json=body, headers=headers)


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_matrix_covers_every_api_route(server):
    client, _ = server
    routes = {(m, _template(r.path)) for r in client.app.routes if isinstance(r, APIRoute) and r.include_in_schema
              for m in r.methods}
    listed = set()
    for method, path, _, _ in API:
        for r in client.app.routes:
            if isinstance(r, APIRoute) and method in r.methods and r.path_regex.match(path.split("?")[0]):
                listed.add((method, _template(r.path)))
                break
    assert routes - listed == set(), "routes missing from the authorisation matrix"
    assert {p for _, _, p, _ in API if p} <= set(PERMISSIONS)


@pytest.mark.parametrize("method,path,permission,body", API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_matrix(server, method, path, permission, body):
    client, keys = server
    anon = _call(client, method, path, body, {})
    revoked = _call(client, method, path, body, {"Authorization": f"Bearer {keys['revoked']}"})
    garbage = _call(client, method, path, body, {"Authorization": "Bearer bw_0000_not-a-key"})
    if permission is None:
        assert anon.status_code not in (401, 403) or path == "/v1/lookup"
        return
    for r in (anon, revoked, garbage):
        assert r.status_code == 401, (r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    for role in ROLES:
        r = _call(client, method, path, body, {"Authorization": f"Bearer {keys[role]}"})
        if allowed((role,), permission):
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
            assert r.status_code < 500, (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            assert r.json()["error"] == "forbidden"


def _login(client, username):
    client.cookies.clear()
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf, "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


@pytest.mark.parametrize("role", ROLES)
def test_page_matrix(server, role):
    client, keys = server
    client.cookies.clear()
    for path, _ in PAGES:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    # an API key is not a dashboard session
    r = client.get("/incidents", headers={"Authorization": f"Bearer {keys['all']}"}, follow_redirects=False)
    assert r.status_code == 303
    _login(client, f"{role}-user")
    for path, permission in PAGES:
        r = client.get(path, follow_redirects=False)
        if allowed((role,), permission):
            assert r.status_code in (200, 404), (role, path, r.status_code)
        else:
            assert r.status_code == 403, (role, path, r.status_code)
    # and a session is not an API credential
    assert client.get("/v1/incidents").status_code == 401
    client.cookies.clear()


def test_denials_are_audited(server):
    client, keys = server
    client.get("/v1/admin/users", headers={"Authorization": f"Bearer {keys['ingest']}"})
    rows = client.get("/v1/admin/audit", params={"action": "access", "limit": 5000},
                      headers={"Authorization": f"Bearer {keys['admin']}"}).json()
    assert any(r["action"] == "access.denied" and r["resource"] == "/v1/admin/users" and r["outcome"] == "denied"
               for r in rows)
