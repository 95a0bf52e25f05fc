"""The breach lookup: a customer sees exactly their own exposures; nothing tells one refusal from another."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import duckdb
import orjson
import pytest
from scope_world import incident_of

from breachwatch.contract.catalog import load_catalog
from breachwatch.scope import build_manifest, propose_expansions, record_run
from breachwatch.scope.lookup import (
    DENIED_BODY,
    LookupKeyError,
    RateLimits,
    issue_token,
    load_key,
    lookup,
    verify_audit,
)

KEY = bytes(range(32))
CAT = load_catalog(None)
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def scoped_store(world_store):
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    m = build_manifest(con, inc, propose_expansions(con, inc, event_ids=seed), event_ids=seed)
    record_run(m)
    return con, w


def _ask(con, token, **kw):
    kw.setdefault("now", NOW)
    return lookup(con, token, key=KEY, catalog=CAT, **kw)


def test_a_customer_sees_exactly_their_own_fields(scoped_store) -> None:
    con, w = scoped_store
    tok = issue_token("r-10", KEY, now=NOW.timestamp())
    resp = _ask(con, tok, client="203.0.113.9")
    assert resp.status == 200
    body = resp.json()
    mine = {f for s, f in w.truth["forged_token"] if s == "r-10"}
    assert body["subject_id"] == "r-10" and body["exposed"] is True
    [incident] = body["incidents"]
    assert {f["field"] for f in incident["fields"]} == mine
    assert {f["label_ko"] for f in incident["fields"]} >= {"전화번호", "배송지 주소"}
    assert incident["first_exposure"].startswith("2025-04-01")
    # Someone not exposed gets a plain "nothing of yours", not a refusal.
    clean = _ask(con, issue_token("1000001", KEY, now=NOW.timestamp())).json()
    assert clean["exposed"] is False and clean["incidents"] == []


def test_forged_wrong_expired_and_someone_elses_id_look_identical(scoped_store) -> None:
    con, _ = scoped_store
    good = issue_token("1000011", KEY, now=NOW.timestamp())
    payload, sig = good.split(".")
    other_payload = base64.urlsafe_b64encode(orjson.dumps({"sub": "r-10", "exp": 4102444800, "v": 1})).rstrip(b"=")
    attempts = [
        other_payload.decode() + "." + sig,                                   # edited to name someone else
        issue_token("r-10", b"x" * 32, now=NOW.timestamp()),                  # signed with a guessed key
        issue_token("1000011", KEY, ttl_s=60, now=(NOW - timedelta(hours=1)).timestamp()),  # expired
        "garbage", "", payload + ".", "." + sig,
    ]
    responses = [_ask(con, t) for t in attempts]
    responses.append(_ask(con, good, subject_id="r-10"))                     # valid token, another person's id
    responses.append(_ask(con, issue_token("9999999", b"y" * 32, now=NOW.timestamp()), subject_id="9999999"))
    assert {(r.status, r.body) for r in responses} == {(401, DENIED_BODY)}
    assert _ask(con, good, subject_id="1000011").status == 200


def test_refusals_are_decided_before_any_exposure_is_read(scoped_store) -> None:
    """So a forged token naming an exposed customer and one naming nobody do the same work."""
    con, _ = scoped_store
    con.execute("ALTER TABLE scope_subjects RENAME TO scope_subjects_away")
    forged = [issue_token(s, b"z" * 32, now=NOW.timestamp()) for s in ("1000011", "no-such-person")]
    assert [(r.status, r.body) for r in (_ask(con, t) for t in forged)] == [(401, DENIED_BODY)] * 2
    with pytest.raises(duckdb.CatalogException):  # only a verified token reaches the exposures
        _ask(con, issue_token("1000011", KEY, now=NOW.timestamp()))
    con.execute("ALTER TABLE scope_subjects_away RENAME TO scope_subjects")


def test_rate_limited_per_client_and_every_call_audited(scoped_store) -> None:
    con, _ = scoped_store
    tok = issue_token("1000011", KEY, now=NOW.timestamp())
    limits = RateLimits(per_client=3, per_subject=100, window_s=60)
    got = [_ask(con, tok, client="198.51.100.7", limits=limits).status for _ in range(5)]
    assert got == [200, 200, 200, 429, 429]
    # Another client is not affected, and the window passes.
    assert _ask(con, tok, client="198.51.100.8", limits=limits).status == 200
    assert _ask(con, tok, client="198.51.100.7", limits=limits, now=NOW + timedelta(seconds=61)).status == 200
    rows = con.execute("SELECT client, outcome, subject_id FROM lookup_audit ORDER BY seq").fetchall()
    assert len(rows) == 7 and [r[1] for r in rows].count("rate_limited") == 2
    assert verify_audit(con) is None
    con.execute("DELETE FROM lookup_audit WHERE seq = 2")
    assert verify_audit(con) == 2


def test_per_subject_limit_holds_across_clients(scoped_store) -> None:
    con, _ = scoped_store
    tok = issue_token("1000011", KEY, now=NOW.timestamp())
    limits = RateLimits(per_client=100, per_subject=2, window_s=60)
    got = [_ask(con, tok, client=f"10.0.0.{i}", limits=limits).status for i in range(4)]
    assert got == [200, 200, 429, 429]


def test_the_key_must_be_configured_and_long(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("BREACHWATCH_LOOKUP_KEY", raising=False)
    monkeypatch.delenv("BREACHWATCH_LOOKUP_KEY_FILE", raising=False)
    with pytest.raises(LookupKeyError, match="no lookup key"):
        load_key(CAT)
    monkeypatch.setenv("BREACHWATCH_LOOKUP_KEY", "abcd")
    with pytest.raises(LookupKeyError, match="at least 32"):
        load_key(CAT)
    monkeypatch.setenv("BREACHWATCH_LOOKUP_KEY", KEY.hex())
    assert load_key(CAT) == KEY
