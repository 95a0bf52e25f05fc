"""The provenance check against real RS256/ES256/EdDSA tokens and a real Redis ledger."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time

import orjson
import pytest

from breachwatch.guard.check import Guard
from breachwatch.guard.decision import CheckRequest, Decision
from breachwatch.guard.keyset import KeyRing, KeySetError
from breachwatch.guard.ledger import LedgerEntry
from breachwatch.guard.tokens import parse_token, token_hash
from guard_helpers import Issuer, config, make_key, shared_ledger, sign, write_jwks  # noqa: F401

NOW = time.time()
CUTOVER = "2020-01-01T00:00:00Z"


@pytest.fixture
def world(tmp_path, shared_ledger):
    keys = {"rsa-1": make_key("RSA", "rsa-1"), "ec-1": make_key("EC", "ec-1"), "ed-1": make_key("OKP", "ed-1")}
    jwks = write_jwks(tmp_path / "jwks.json", list(keys.values()))
    events: list[tuple[Decision, CheckRequest]] = []

    def build(**cfg):
        settings = {"mode": "enforce", "enforce_from": CUTOVER, "ledger_lag_ms": 0, **cfg}
        ring = KeyRing(str(jwks), static_retired=frozenset(settings.pop("retired_kids", [])))
        ring.load()
        return Guard(config(**settings), ring, shared_ledger, recorder=lambda d, r: events.append((d, r)))

    class W:
        pass
    w = W()
    w.keys, w.jwks, w.ledger, w.events, w.build = keys, jwks, shared_ledger, events, build
    w.issuer = Issuer(keys, shared_ledger)
    w.guard = build()
    return w


def ask(guard: Guard, token: str | None, path: str = "/api/members/me", method: str = "GET") -> Decision:
    return guard.check(CheckRequest(f"Bearer {token}" if token else None, method, path, "203.0.113.9", "curl/8"))


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_token_a_login_issued_is_allowed(world, kid):
    token = world.issuer.login("1001", kid)
    d = ask(world.guard, token)
    assert (d.allow, d.reason, d.subject, d.key_id) == (True, "ok", "1001", kid)
    assert d.signature_verified
    assert world.events == []


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_forged_token_signed_with_the_leaked_key_is_denied(world, kid):
    # The departed engineer holds the real private key: the signature is perfect,
    # but no login issued the token.
    forged = sign(world.keys[kid], world.issuer.claims("2000417"))
    d = ask(world.guard, forged)
    assert (d.allow, d.reason) == (False, "not_in_ledger")
    assert d.signature_verified
    (ev, req), = world.events
    assert ev.reason == "not_in_ledger" and ev.mode == "enforce" and req.src_ip == "203.0.113.9"


def test_real_jti_reused_in_a_forged_token_with_another_subject_is_denied(world):
    real = world.issuer.login("1001", "rsa-1")
    jti = parse_token(real).token_id
    forged = sign(world.keys["rsa-1"], world.issuer.claims("999", jti=jti))
    assert ask(world.guard, real).reason == "ok"
    d = ask(world.guard, forged)
    assert (d.allow, d.reason) == (False, "ledger_mismatch")


def test_token_without_jti_is_known_by_its_hash(world):
    claims = world.issuer.claims("1001", jti=None)
    token = sign(world.keys["ec-1"], claims)
    world.ledger.record(LedgerEntry(token_hash(token), "1001", "ec-1", claims["exp"], claims["iat"], "service"))
    assert ask(world.guard, token).reason == "ok"
    # Same claims, signed again: another token, another hash, not in the ledger.
    other = sign(world.keys["ec-1"], {**claims, "scope": "orders"})
    assert ask(world.guard, other).reason == "not_in_ledger"


def test_a_jti_that_names_a_real_tokens_hash_does_not_borrow_its_entry(world):
    claims = world.issuer.claims("1001", jti=None)
    token = sign(world.keys["rsa-1"], claims)
    world.ledger.record(LedgerEntry(token_hash(token), "1001", "rsa-1", claims["exp"], claims["iat"], "service"))
    forged = sign(world.keys["rsa-1"], {**claims, "jti": token_hash(token)})
    assert ask(world.guard, forged).reason == "ledger_mismatch"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


def test_alg_none_is_denied(world):
    claims = world.issuer.claims("1001")
    world.ledger.record(LedgerEntry(claims["jti"], "1001", "rsa-1", claims["exp"], claims["iat"]))
    token = f"{_b64({'alg': 'none', 'kid': 'rsa-1'})}.{_b64(claims)}."
    d = ask(world.guard, token)
    assert (d.allow, d.reason) == (False, "alg_not_allowed")


def test_hs256_signed_with_the_public_key_is_denied(world):
    # The classic confusion: use the RSA public key (which everyone has) as an HMAC secret.
    claims = world.issuer.claims("1001")
    world.ledger.record(LedgerEntry(claims["jti"], "1001", "rsa-1", claims["exp"], claims["iat"]))
    pem = world.keys["rsa-1"].as_pem(private=False)
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'rsa-1', 'typ': 'JWT'})}.{_b64(claims)}"
    sig = base64.urlsafe_b64encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=")
    d = ask(world.guard, f"{signing_input}.{sig.decode()}")
    assert (d.allow, d.reason) == (False, "alg_not_allowed")


def test_alg_must_match_the_keys_pinned_alg(world):
    # A real RS256 signature, but presented under the EC key's kid.
    claims = world.issuer.claims("1001")
    token = sign(world.keys["rsa-1"], claims, header={"kid": "ec-1"})
    assert ask(world.guard, token).reason == "alg_not_allowed"


def test_token_signed_with_the_wrong_key_is_denied(world):
    impostor = make_key("RSA", "rsa-1")  # same kid, different key
    claims = world.issuer.claims("1001")
    world.ledger.record(LedgerEntry(claims["jti"], "1001", "rsa-1", claims["exp"], claims["iat"]))
    d = ask(world.guard, sign(impostor, claims))
    assert (d.allow, d.reason, d.signature_verified) == (False, "bad_signature", False)


def test_tampered_claims_break_the_signature(world):
    token = world.issuer.login("1001", "ed-1")
    head, _, sig = token.split(".")
    claims = parse_token(token).claims | {"sub": "1002"}
    assert ask(world.guard, f"{head}.{_b64(claims)}.{sig}").reason == "bad_signature"


def test_unknown_kid_and_missing_kid_are_denied(world):
    stranger = make_key("EC", "laptop-key")
    assert ask(world.guard, sign(stranger, world.issuer.claims("1"))).reason == "unknown_kid"
    no_kid = sign(world.keys["ec-1"], world.issuer.claims("1"), header={"kid": ""})
    assert ask(world.guard, no_kid).reason == "no_kid"


def test_expired_token_is_denied(world):
    token = world.issuer.login("1001", "rsa-1", now=NOW - 3000)  # 900 s lifetime: expired 2100 s ago
    d = ask(world.guard, token)
    assert (d.allow, d.reason) == (False, "expired")


def test_revoked_token_is_denied(world):
    token = world.issuer.login("1001", "ec-1")
    assert ask(world.guard, token).reason == "ok"
    world.ledger.revoke(parse_token(token).token_id, "user reported theft")
    d = ask(world.guard, token)
    assert (d.allow, d.reason) == (False, "revoked")
    assert "user reported theft" in d.detail


def test_subject_revocation_covers_tokens_issued_before_it(world):
    old = world.issuer.login("1001", "rsa-1", now=NOW - 60)
    world.ledger.revoke_subject("1001", issued_before=NOW - 30)
    new = world.issuer.login("1001", "rsa-1", now=NOW)
    assert ask(world.guard, old).reason == "subject_revoked"
    assert ask(world.guard, new).reason == "ok"


def test_lifetime_beyond_policy_and_missing_claims_are_denied(world):
    guard = world.build(max_lifetime_s=600)
    long_lived = world.issuer.login("1001", "rsa-1")  # 900 s
    assert ask(guard, long_lived).reason == "lifetime_exceeds_policy"
    c = world.issuer.claims("1001")
    assert ask(guard, sign(world.keys["rsa-1"], {k: v for k, v in c.items() if k != "exp"})).reason == "no_expiry"
    assert ask(guard, sign(world.keys["rsa-1"], {k: v for k, v in c.items() if k != "iat"})).reason == "no_issued_at"
    future = world.issuer.claims("1001", now=NOW + 3600)
    assert ask(guard, sign(world.keys["rsa-1"], future)).reason == "issued_in_future"


def test_retired_kid_is_denied_and_retirement_reloads_without_restart(world):
    token = world.issuer.login("1001", "ec-1")
    assert ask(world.guard, token).reason == "ok"
    world.ledger.retire_kid("ec-1")
    world.guard.refresh_retired()
    assert ask(world.guard, token).reason == "kid_retired"
    static = world.build(retired_kids=["rsa-1"])
    assert ask(static, world.issuer.login("1", "rsa-1")).reason == "kid_retired"


def test_key_set_reloads_without_restart(world):
    rotated = make_key("RSA", "rsa-2")
    world.issuer.keys["rsa-2"] = rotated
    token_new = world.issuer.login("1001", "rsa-2")
    assert ask(world.guard, token_new).reason == "unknown_kid"
    write_jwks(world.jwks, [rotated, world.keys["ec-1"]])  # rsa-1 rotated out, rsa-2 in
    st = os.stat(world.jwks)
    os.utime(world.jwks, (st.st_atime, st.st_mtime + 2))
    assert world.guard.keyring.refresh() is True
    assert ask(world.guard, token_new).reason == "ok"
    assert ask(world.guard, world.issuer.login("1001", "rsa-1")).reason == "unknown_kid"


def test_shadow_mode_denies_nothing_and_records_what_it_would_deny(world):
    guard = world.build(mode="shadow", enforce_from=None)
    forged = sign(world.keys["rsa-1"], world.issuer.claims("31337"))
    d = ask(guard, forged)
    assert (d.allow, d.reason, d.would_deny, d.mode) == (True, "shadow", "not_in_ledger", "shadow")
    assert [e.would_deny for e, _ in world.events] == ["not_in_ledger"]
    assert ask(guard, world.issuer.login("1", "rsa-1")).reason == "ok"
    assert len(world.events) == 1


def test_cutover_in_the_future_means_shadow_until_then(world):
    guard = world.build(enforce_from="2999-01-01T00:00:00+09:00")
    d = ask(guard, sign(world.keys["rsa-1"], world.issuer.claims("1")))
    assert (d.allow, d.would_deny) == (True, "not_in_ledger")


def test_tokens_issued_before_the_cutover_pass_on_their_other_checks(world):
    cut = NOW - 120
    guard = world.build(enforce_from=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cut)))
    before = sign(world.keys["ec-1"], world.issuer.claims("1001", now=cut - 60))
    after = sign(world.keys["ec-1"], world.issuer.claims("1001", now=cut + 60))
    assert ask(guard, before).reason == "pre_cutover"
    assert ask(guard, after).reason == "not_in_ledger"
    # Other checks still apply to pre-cutover tokens: revocation and signature.
    world.ledger.revoke(parse_token(before).token_id)
    assert ask(guard, before).reason == "revoked"
    head, payload, _ = sign(world.keys["ec-1"], world.issuer.claims("1", now=cut - 60)).split(".")
    _, _, other_sig = before.split(".")
    assert ask(guard, f"{head}.{payload}.{other_sig}").reason == "bad_signature"


def test_route_that_allows_unknown_tokens_logs_them_as_shadow(world):
    guard = world.build(routes=[{"prefix": "/api/partner/", "on_unknown": "allow"}])
    forged = sign(world.keys["rsa-1"], world.issuer.claims("p-77"))
    d = ask(guard, forged, path="/api/partner/orders")
    assert (d.allow, d.would_deny, d.mode) == (True, "not_in_ledger", "shadow")
    assert ask(guard, forged, path="/api/members/me").reason == "not_in_ledger"
    # Only ledger absence is relaxed there: a bad signature is still denied.
    assert ask(guard, sign(make_key("RSA", "rsa-1"), world.issuer.claims("1")),
               path="/api/partner/orders").reason == "bad_signature"


def test_missing_token_is_denied_unless_the_route_is_anonymous(world):
    guard = world.build(routes=[{"prefix": "/api/public/", "allow_anonymous": True}])
    assert ask(guard, None).reason == "no_token"
    assert ask(guard, None, path="/api/public/stores").reason == "anonymous"
    assert ask(guard, "not-a-jwt").reason == "malformed"


def test_issuer_lag_is_waited_for_and_then_denied(world):
    guard = world.build(ledger_lag_ms=2000)
    claims = world.issuer.claims("1001")
    token = sign(world.keys["rsa-1"], claims)

    def late_write():
        time.sleep(0.2)
        world.ledger.record(LedgerEntry(claims["jti"], "1001", "rsa-1", claims["exp"], claims["iat"], "sso"))
    t = threading.Thread(target=late_write)
    t.start()
    assert ask(guard, token).reason == "ok"
    t.join()
    # An old forged token gets no grace: its iat is older than the lag.
    old_forged = sign(world.keys["rsa-1"], world.issuer.claims("1001", now=NOW - 300))
    assert ask(guard, old_forged).reason == "not_in_ledger"


def test_ledger_only_mode_skips_signatures_but_not_the_ledger(world):
    guard = world.build(verify_signatures=False)
    unverifiable = make_key("RSA", "rsa-1")  # the gateway verified it, we do not
    claims = world.issuer.claims("1001")
    token = sign(unverifiable, claims)
    assert ask(guard, token).reason == "not_in_ledger"
    world.ledger.record(LedgerEntry(claims["jti"], "1001", "rsa-1", claims["exp"], claims["iat"]))
    d = ask(guard, token)
    assert (d.reason, d.signature_verified) == ("ok", False)
    unsigned = f"{_b64({'alg': 'none', 'kid': 'rsa-1'})}.{_b64(claims)}."
    assert ask(guard, unsigned).reason == "alg_not_allowed"


def test_jwks_with_private_or_symmetric_keys_is_refused(tmp_path):
    k = make_key("RSA", "k")
    p = tmp_path / "jwks.json"
    p.write_bytes(orjson.dumps({"keys": [k.as_dict(private=True)]}))
    with pytest.raises(KeySetError, match="private key material"):
        KeyRing(str(p)).load()
    p.write_bytes(orjson.dumps({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}))
    with pytest.raises(KeySetError, match="symmetric"):
        KeyRing(str(p)).load()


def test_a_broken_jwks_deploy_keeps_the_last_good_keys(world):
    token = world.issuer.login("1001", "rsa-1")
    world.jwks.write_text("{not json")
    st = os.stat(world.jwks)
    os.utime(world.jwks, (st.st_atime, st.st_mtime + 2))
    assert world.guard.keyring.refresh() is False
    assert "not valid JSON" in world.guard.keyring.last_error
    assert ask(world.guard, token).reason == "ok"


def test_hs_algorithms_cannot_be_configured():
    with pytest.raises(ValueError, match="HS256"):
        config(algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="cut-over"):
        config(mode="enforce")


def test_revoking_one_token_leaves_the_subjects_other_tokens_alone(world):
    # Two logins of the same subject get independent ledger entries.
    a, b = world.issuer.login("1", "ed-1"), world.issuer.login("1", "ed-1")
    assert parse_token(a).token_id != parse_token(b).token_id
    world.ledger.revoke(parse_token(a).token_id)
    assert (ask(world.guard, a).reason, ask(world.guard, b).reason) == ("revoked", "ok")
