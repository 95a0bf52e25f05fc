"""Keys hashed at rest and revocable; argon2id passwords; sessions that expire; login limits; the audit chain."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from server_helpers import PASSWORD, make_store

from breachwatch.server import accounts, apikeys, audit
from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig
from breachwatch.store.db import connect


def test_keys_are_hashed_shown_once_and_revocable(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    token, row = apikeys.create_key(con, "gw", ["ingest"], by="t")
    assert token.startswith(f"bw_{row['key_id']}_") and len(token) > 50
    stored = con.execute("SELECT * FROM api_keys").fetchall()
    assert token not in repr(stored) and token.split("_", 2)[2] not in repr(stored)
    assert apikeys.authenticate_key(con, token).roles == ("ingest",)
    assert apikeys.authenticate_key(con, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    apikeys.revoke_key(con, row["key_id"], by="t")
    assert apikeys.authenticate_key(con, token) is None
    with pytest.raises(ValueError, match="unknown role"):
        apikeys.create_key(con, "x", ["root"], by="t")


def test_a_key_the_server_verified_is_refused_at_once_when_revoked_or_expired(tmp_path, monkeypatch):
    """The server keeps verified keys in memory (no store lookup per request): a revoke through the API
    ends a key from its answer on, and an expiry from its time on."""
    db, keys = make_store(tmp_path)
    con = connect(db)
    brief, _ = apikeys.create_key(con, "brief", ["analyst"], by="t", expires_at=apikeys.now_utc() + timedelta(hours=1))
    con.close()
    with TestClient(create_app(ServerConfig(db=db, detect_interval_s=0))) as c:
        ctx = c.app.state.ctx
        looked_up: list[str] = []
        real = ctx._look_up_key
        monkeypatch.setattr(ctx, "_look_up_key", lambda token: (looked_up.append(token), real(token))[1])
        analyst = {"Authorization": f"Bearer {keys['analyst']}"}
        assert c.get("/v1/incidents", headers=analyst).status_code == 200
        assert c.get("/v1/incidents", headers=analyst).status_code == 200
        assert looked_up == [keys["analyst"]]  # the second request was served from memory
        key_id = keys["analyst"].split("_")[1]
        assert c.delete(f"/v1/admin/apikeys/{key_id}",
                        headers={"Authorization": f"Bearer {keys['admin']}"}).status_code == 200
        assert c.get("/v1/incidents", headers=analyst).status_code == 401
        assert c.get("/v1/incidents", headers={"Authorization": f"Bearer {brief}"}).status_code == 200
        later = apikeys.now_utc() + timedelta(hours=2)
        monkeypatch.setattr(apikeys, "now_utc", lambda: later)
        assert c.get("/v1/incidents", headers={"Authorization": f"Bearer {brief}"}).status_code == 401


def test_passwords_are_argon2id_and_sessions_expire(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    with pytest.raises(ValueError, match="at least 12"):
        accounts.create_user(con, "kim", ["analyst"], "short", by="t")
    accounts.create_user(con, "kim", ["analyst"], PASSWORD, by="t")
    h = con.execute("SELECT password_hash FROM users").fetchone()[0]
    assert h.startswith("$argon2id$") and PASSWORD not in h
    assert accounts.check_login(con, "kim", "wrong password!!") is None
    assert accounts.check_login(con, "nobody", PASSWORD) is None
    assert accounts.check_login(con, "kim", PASSWORD) == ("analyst",)
    token, _ = accounts.start_session(con, "kim", lifetime=timedelta(hours=1), client=None)
    assert accounts.resume_session(con, token, idle=timedelta(minutes=30)).username == "kim"
    con.execute("UPDATE sessions SET last_seen_at = last_seen_at - INTERVAL 31 MINUTE")
    assert accounts.resume_session(con, token, idle=timedelta(minutes=30)) is None  # idle
    token, _ = accounts.start_session(con, "kim", lifetime=timedelta(hours=1), client=None)
    con.execute("UPDATE sessions SET expires_at = now()::TIMESTAMP - INTERVAL 1 SECOND WHERE ended_at IS NULL")
    assert accounts.resume_session(con, token, idle=timedelta(minutes=30)) is None  # lifetime over
    token, _ = accounts.start_session(con, "kim", lifetime=timedelta(hours=1), client=None)
    accounts.disable_user(con, "kim", by="t")
    assert accounts.resume_session(con, token, idle=timedelta(minutes=30)) is None  # account disabled


def test_logins_are_rate_limited(tmp_path):
    db, _ = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0, login_attempts=3))
    with TestClient(app) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        codes = [c.post("/login", data={"username": "analyst-user", "password": "not the password",
                                         "csrf": csrf}).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = c.post("/login", data={"username": "analyst-user", "password": PASSWORD, "csrf": csrf},
                   follow_redirects=False)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password waits
        with app.state.ctx.store.reading() as cur:
            assert cur.execute("SELECT count(*) FROM audit_log WHERE action = 'login.failed'").fetchone()[0] == 3


def _login(c: TestClient, user: str, password: str) -> int:
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    return c.post("/login", data={"username": user, "password": password, "csrf": csrf},
                  follow_redirects=False).status_code


def test_login_limits_survive_a_restart_and_reset_on_success(tmp_path):
    db, _ = make_store(tmp_path)
    cfg = ServerConfig(db=db, detect_interval_s=0, login_attempts=3)
    with TestClient(create_app(cfg)) as c:
        assert [_login(c, "analyst-user", "not the password") for _ in range(3)] == [401, 401, 401]
        assert [_login(c, "dpo-user", "not the password") for _ in range(2)] == [401, 401]
        assert _login(c, "dpo-user", PASSWORD) == 303
    with TestClient(create_app(cfg)) as c:  # a new server on the same store: nothing carried in memory
        assert _login(c, "analyst-user", PASSWORD) == 429
        # dpo-user's success started its count afresh: two more failures are allowed, the third limits
        assert [_login(c, "dpo-user", "not the password") for _ in range(4)] == [401, 401, 401, 429]
        assert _login(c, "admin-user", PASSWORD) == 303  # other accounts are unaffected


def test_audit_trail_is_append_only_by_hash_chain(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    for i in range(5):
        audit.record(con, actor="user:kim", action="incident.view", resource=f"incident/INC-{i}")
    assert audit.verify_audit(con) is None
    con.execute("UPDATE audit_log SET resource = 'incident/INC-9' WHERE seq = 3")
    assert audit.verify_audit(con) == 3
    con.execute("UPDATE audit_log SET resource = 'incident/INC-2' WHERE seq = 3")
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify_audit(con) == 2


def test_audit_page_check_reads_only_new_rows_between_full_checks(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    for i in range(5):
        audit.record(con, actor="user:kim", action="incident.view", resource=f"incident/INC-{i}")
    trail = audit.VerifiedTrail(full_every_s=3600)
    assert trail.check(con) is None and trail.full_at is not None  # the first check reads everything
    for i in range(5, 8):
        audit.record(con, actor="user:lee", action="incident.view", resource=f"incident/INC-{i}")
    assert trail.check(con) is None
    con.execute("UPDATE audit_log SET resource = 'incident/INC-99' WHERE seq = 7")  # after the checked part
    assert trail.check(con) == 7
    con.execute("UPDATE audit_log SET resource = 'incident/INC-6' WHERE seq = 7")
    con.execute("UPDATE audit_log SET actor = 'user:x' WHERE seq = 5")  # the row the full check ended on
    assert trail.check(con) == 5
    con.execute("UPDATE audit_log SET actor = 'user:kim' WHERE seq = 5")
    con.execute("DELETE FROM audit_log WHERE seq = 2")  # a row missing inside the checked part
    assert trail.check(con) == 2
    # An edit inside the checked part that leaves its last row alone waits for the next full check,
    # which `GET /v1/admin/audit/verify` always is.
    con.execute("INSERT INTO audit_log SELECT 2, recorded_at, actor, roles, action, 'incident/INC-1', outcome, client, "
                "detail, prev_hash, hash FROM audit_log WHERE seq = 3")
    assert trail.check(con) is None
    trail.full_every_s = 0
    assert trail.check(con) == 2 and audit.verify_audit(con) == 2
