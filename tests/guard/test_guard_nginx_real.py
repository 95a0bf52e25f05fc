"""A real nginx, configured exactly as docs/guard.md says, in front of a backend,
asking a real guard over HTTP (auth_request)."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import orjson
import pytest
import uvicorn

from breachwatch.guard.http_app import build_service, create_app
from guard_helpers import SHARED_REDIS, Issuer, config, free_port, make_key, shared_ledger, sign, write_jwks  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian's nginx-light (auth_request)")

NGINX_CONF = """
daemon off;
master_process off;
user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    server {{  # the backend: echoes the subject the gateway vouches for
        listen 127.0.0.1:{backend};
        location / {{ return 200 "subject=[$http_x_breachwatch_subject]"; }}
    }}
    server {{
        listen 127.0.0.1:{gateway};
        location /api/ {{
            auth_request /_breachwatch;
            auth_request_set $bw_subject $upstream_http_x_breachwatch_subject;
            proxy_set_header X-Breachwatch-Subject $bw_subject;
            proxy_pass http://127.0.0.1:{backend};
        }}
        location = /_breachwatch {{
            internal;
            proxy_pass http://127.0.0.1:{guard}/nginx/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_connect_timeout 250ms;
            proxy_read_timeout 2s;
        }}
    }}
}}
"""


def _wait(port: int) -> None:
    import socket
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture
def stack(tmp_path, shared_ledger):
    keys = {"login-2024": make_key("RSA", "login-2024")}
    cfg = config(mode="enforce", enforce_from="2020-01-01T00:00:00Z", ledger_lag_ms=0,
                 jwks=str(write_jwks(tmp_path / "jwks.json", list(keys.values()))), redis_url=SHARED_REDIS,
                 redis_prefix=shared_ledger.prefix, spool_dir=str(tmp_path / "spool"),
                 routes=[{"prefix": "/api/partner/", "on_unknown": "allow"}])
    service = build_service(cfg)
    ports = {"guard": free_port(), "gateway": free_port(), "backend": free_port()}
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=ports["guard"],
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp_path, **ports))
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(ports["guard"])
        _wait(ports["gateway"])

        def get(path, token=None, **headers):
            h = dict(headers)
            if token:
                h["Authorization"] = f"Bearer {token}"
            req = urllib.request.Request(f"http://127.0.0.1:{ports['gateway']}{path}", headers=h)
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, r.headers, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.headers, e.read().decode()

        yield get, Issuer(keys, shared_ledger), keys, service, tmp_path
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        server.should_exit = True
        thread.join(timeout=10)


def test_nginx_serves_issued_tokens_and_denies_forged_ones(stack):
    get, issuer, keys, service, tmp = stack
    token = issuer.login("1001", "login-2024")
    status, _, body = get("/api/me/profile", token, **{"X-Breachwatch-Subject": "evil"})
    assert (status, body) == (200, "subject=[1001]")  # the client's own header was overwritten
    forged = sign(keys["login-2024"], issuer.claims("2000417"))
    status, headers, _ = get("/api/members/2000417/profile", forged)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="not_in_ledger"'
    assert get("/api/me/profile")[0] == 401
    # A route in shadow for unknown tokens: served, but the backend is told no subject is vouched for.
    status, _, body = get("/api/partner/orders", forged, **{"X-Breachwatch-Subject": "evil"})
    assert (status, body) == (200, "subject=[]")

    service.spool.flush()
    service.spool.close()
    events = [orjson.loads(x) for f in (tmp / "spool").glob("*.ndjson") for x in f.read_bytes().splitlines()]
    seen = sorted((e["endpoint"], e["attributes"]["reason"], e["attributes"]["mode"], e.get("src_ip")) for e in events)
    assert seen == [("GET /api/me/profile", "no_token", "enforce", "127.0.0.1"),
                    ("GET /api/members/2000417/profile", "not_in_ledger", "enforce", "127.0.0.1"),
                    ("GET /api/partner/orders", "not_in_ledger", "shadow", "127.0.0.1")]
