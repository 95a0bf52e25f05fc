"""Filling the ledger from token_issued events (files and the store), the ledger
CLI, and `guard serve` as a real process answering real HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from breachwatch.guard.check import Guard
from breachwatch.guard.decision import CheckRequest
from breachwatch.guard.keyset import KeyRing
from breachwatch.guard.ledger import LedgerEntry
from breachwatch.guard.tokens import parse_token
from breachwatch.ingest.pipeline import ingest_records
from guard_helpers import (SHARED_REDIS, config, free_port, make_key, run_cli, shared_ledger,  # noqa: F401
                           sign, write_jwks)

BIN = Path(sys.executable).parent / "breachwatch"


def iso(ts: float, tz: str = "+09:00") -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone(
        datetime.strptime(tz, "%z").tzinfo).isoformat()


def cli(*args: str):
    return run_cli(*args)


class Tokens:
    """Tokens from several issuance paths, and the token_issued events their issuers logged."""

    def __init__(self, key) -> None:
        self.key = key
        now = time.time()
        self.now = now
        self.tokens: dict[str, str] = {}
        self.events: list[dict] = []
        for i, (sub, path) in enumerate([("1001", "login"), ("1002", "refresh"), ("emp-7", "sso"),
                                         ("partner-3", "partner_oauth"), ("svc-billing", "service")]):
            claims = {"sub": sub, "jti": f"jti-{path}-{i}", "iat": int(now) - 10, "exp": int(now) + 900}
            self.tokens[path] = sign(key, claims)
            self.events.append({"event_id": f"iss-{i}", "time": iso(now - 10), "kind": "token_issued",
                                "principal_id": sub, "token_id": claims["jti"], "key_id": key.kid,
                                # epoch seconds and RFC 3339 are both Contract 1 times
                                "token_issued_at": claims["iat"], "token_expires_at": iso(claims["exp"], "+00:00"),
                                "attributes": {"issuance": path}})
        old = {"sub": "1003", "jti": "jti-old", "iat": int(now) - 7200, "exp": int(now) - 6300}
        self.events.append({"event_id": "iss-old", "time": iso(now - 7200), "kind": "token_issued",
                            "principal_id": "1003", "token_id": old["jti"], "key_id": key.kid,
                            "token_issued_at": old["iat"], "token_expires_at": old["exp"]})
        self.events.append({"event_id": "rev-1", "time": iso(now - 5), "kind": "token_revoked",
                            "principal_id": "1002", "token_id": "jti-refresh-1", "token_expires_at": int(now) + 900,
                            "attributes": {"reason": "refresh token reuse"}})
        self.forged = sign(key, {"sub": "2000417", "jti": "never-issued", "iat": int(now), "exp": int(now) + 900})


@pytest.fixture
def setup(tmp_path, shared_ledger):
    key = make_key("RSA", "login-2019")
    jwks = write_jwks(tmp_path / "jwks.json", [key])
    ring = KeyRing(str(jwks))
    ring.load()
    guard = Guard(config(mode="enforce", enforce_from="2020-01-01T00:00:00Z", ledger_lag_ms=0), ring, shared_ledger)
    return Tokens(key), guard, jwks


def reasons(guard: Guard, toks: Tokens) -> dict[str, str]:
    out = {name: guard.check(CheckRequest(f"Bearer {t}")).reason for name, t in toks.tokens.items()}
    out["forged"] = guard.check(CheckRequest(f"Bearer {toks.forged}")).reason
    return out


EXPECTED = {"login": "ok", "refresh": "revoked", "sso": "ok", "partner_oauth": "ok", "service": "ok",
            "forged": "not_in_ledger"}


def test_load_from_ndjson_and_parquet_files(setup, tmp_path, shared_ledger):
    toks, guard, _ = setup
    assert set(reasons(guard, toks).values()) == {"not_in_ledger"}
    d = tmp_path / "issuers"
    d.mkdir()
    (d / "login.ndjson").write_bytes(b"\n".join(orjson.dumps(e) for e in toks.events[:2]) + b"\n{broken\n")
    rest = [{**e, "attributes": json.dumps(e.get("attributes", {}))} for e in toks.events[2:]]
    for e in rest:
        for k in ("token_issued_at", "token_expires_at", "time"):
            if k in e:
                e[k] = str(e[k])
    pq.write_table(pa.Table.from_pylist(rest), d / "others.parquet")
    r = cli("guard", "ledger", "load", str(d), "--redis", SHARED_REDIS, "--prefix", shared_ledger.prefix, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["issued"], summary["recorded"], summary["expired_skipped"], summary["revoked_tokens"]) == (6, 5, 1, 1)
    assert sum(summary["unusable"].values()) == 1  # the broken line is counted, not silently dropped
    assert reasons(guard, toks) == EXPECTED


def test_load_from_the_store_read_only(setup, store, shared_ledger):
    toks, guard, _ = setup
    con, path = store
    ingest_records(con, toks.events + [{"event_id": "kr", "time": iso(toks.now), "kind": "key_retired",
                                        "key_id": "login-2015", "owner_id": "emp-3"}], "issuer-logs")
    con.close()
    r = cli("guard", "ledger", "load", "--db", path, "--redis", SHARED_REDIS, "--prefix", shared_ledger.prefix, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["recorded"], summary["revoked_tokens"], summary["retired_kids"]) == (5, 1, 1)
    assert reasons(guard, toks) == EXPECTED
    assert shared_ledger.retired_kids() == {"login-2015"}


def test_ledger_cli_revoke_retire_and_check(setup, shared_ledger):
    toks, guard, jwks = setup

    p = parse_token(toks.tokens["login"])
    shared_ledger.record(LedgerEntry(p.token_id, p.subject, p.kid, int(p.numeric("exp")), int(p.numeric("iat"))))
    common = ["--redis", SHARED_REDIS]
    cfg = Path(jwks).parent / "guard.yaml"
    cfg.write_text(f"mode: enforce\nenforce_from: 2020-01-01T00:00:00Z\nredis_prefix: '{shared_ledger.prefix}'\n"
                   f"jwks: {jwks}\nledger_lag_ms: 0\n")
    ok = cli("guard", "check", toks.tokens["login"], "--config", str(cfg), *common, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["reason"] == "ok"
    bad = cli("guard", "check", toks.forged, "--config", str(cfg), *common)
    assert bad.returncode == 1 and "not_in_ledger" in bad.stdout
    assert cli("guard", "ledger", "revoke", "--token", toks.tokens["login"], "--config", str(cfg), *common).returncode == 0
    assert guard.check(CheckRequest(f"Bearer {toks.tokens['login']}")).reason == "revoked"
    assert cli("guard", "ledger", "retire-key", "login-2019", "--config", str(cfg), *common).returncode == 0
    again = cli("guard", "check", toks.tokens["sso"], "--config", str(cfg), *common, "--json")
    assert json.loads(again.stdout)["reason"] == "kid_retired"
    stats = cli("guard", "ledger", "stats", "--config", str(cfg), *common, "--json")
    assert json.loads(stats.stdout) == {"tokens": 1, "revoked": 1, "subjects_revoked": 0, "retired_kids": 1}


def test_cli_errors_name_the_problem_and_exit_2(tmp_path):
    r = cli("guard", "ledger", "stats", "--redis", "redis://127.0.0.1:1/0")
    assert r.returncode == 2 and "Fix:" in r.stderr
    r = cli("guard", "check", "x", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "not found" in r.stderr
    bad = tmp_path / "g.yaml"
    bad.write_text("mode: enforce\n")
    r = cli("guard", "check", "x", "--config", str(bad))
    assert r.returncode == 2 and "enforce_from" in r.stderr


def test_guard_serve_answers_nginx_over_real_http(setup, tmp_path, shared_ledger):
    toks, _, jwks = setup
    port = free_port()
    spool = tmp_path / "spool"
    cfg = tmp_path / "guard.yaml"
    cfg.write_text(f"redis_prefix: '{shared_ledger.prefix}'\nledger_lag_ms: 0\n")
    p = parse_token(toks.tokens["sso"])
    shared_ledger.record(LedgerEntry(p.token_id, p.subject, p.kid, int(p.numeric("exp")), int(p.numeric("iat"))))
    proc = subprocess.Popen([str(BIN), "guard", "serve", "--config", str(cfg), "--jwks", str(jwks),
                             "--redis", SHARED_REDIS, "--port", str(port), "--mode", "enforce",
                             "--enforce-from", "2020-01-01T00:00:00Z", "--spool", str(spool)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(token):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/nginx/auth", headers={
            "Authorization": f"Bearer {token}", "X-Original-URI": "/api/me/profile", "X-Real-IP": "192.0.2.1"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = get(toks.tokens["sso"])
                break
            except urllib.error.URLError as e:
                if proc.poll() is not None:
                    raise AssertionError(f"guard serve exited: {proc.stderr.read().decode()}") from e
                if time.monotonic() > deadline:
                    raise AssertionError("guard serve did not answer within 30 s") from e
                time.sleep(0.2)
        assert status == 200
        assert get(toks.forged) == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # On shutdown the spool file is published for ingest.
    lines = [orjson.loads(x) for f in spool.glob("*.ndjson") for x in f.read_bytes().splitlines()]
    assert [(e["kind"], e["principal_id"], e["src_ip"], e["attributes"]["reason"]) for e in lines] == [
        ("token_denied", "2000417", "192.0.2.1", "not_in_ledger")]
