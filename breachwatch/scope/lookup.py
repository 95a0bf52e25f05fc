"""The breach lookup: one customer, holding a token the company issued to them, sees what of theirs leaked.

The token is `base64url(payload).base64url(HMAC-SHA256(key, payload))`, the
payload carrying the subject id and an expiry. Anyone without the key cannot
make one, so a forged token, a token edited to name someone else, an expired
one, or a valid token used with another person's id all get the same refusal:
the same status and the same bytes, decided before the store is read, with the
signature compared in constant time. Every call, refused or not, appends one
row to `lookup_audit`, hash-chained so a deleted or edited row shows, and the
same table drives the rate limits, so they hold across processes.

    >>> key = b"k" * 32
    >>> tok = issue_token("1000001", key, ttl_s=3600, now=0)
    >>> verify_token(tok, key, now=10)
    '1000001'
    >>> verify_token(tok[:-2] + "AA", key, now=10) is None
    True
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import orjson

from breachwatch.contract.catalog import Catalog

KEY_ENV = "BREACHWATCH_LOOKUP_KEY"
KEY_FILE_ENV = "BREACHWATCH_LOOKUP_KEY_FILE"
MIN_KEY_BYTES = 32
DEFAULT_TTL_S = 30 * 24 * 3600
GENESIS = "0" * 64

# One refusal for every failure a caller could try to tell apart.
DENIED_STATUS = 401
DENIED_BODY = b'{"error":"invalid_or_expired_token","message":"This lookup link is not valid. Ask the company for a new one."}'
LIMITED_STATUS = 429
LIMITED_BODY = b'{"error":"rate_limited","message":"Too many lookups. Try again later."}'


class LookupKeyError(ValueError):
    """No usable lookup key; the message says where to put one."""


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_key(catalog: Catalog | None = None) -> bytes:
    """The lookup signing key: env BREACHWATCH_LOOKUP_KEY (hex or text), env BREACHWATCH_LOOKUP_KEY_FILE,
    or `policy.lookup.key_file` in breachwatch.yaml."""
    raw: bytes | None = None
    if os.environ.get(KEY_ENV):
        text = os.environ[KEY_ENV].strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = text.encode()
    else:
        path = os.environ.get(KEY_FILE_ENV) or (((catalog.policy.get("lookup") or {}).get("key_file"))
                                                if catalog is not None else None)
        if path:
            p = Path(path)
            if not p.exists():
                raise LookupKeyError(f"lookup key file {p} does not exist. Fix: create it with "
                                     f"'head -c 32 /dev/urandom > {p}; chmod 600 {p}'.")
            raw = p.read_bytes().strip()
    if raw is None:
        raise LookupKeyError(f"no lookup key is configured. Fix: set {KEY_ENV} to 64 hex digits "
                             f"(e.g. from 'openssl rand -hex 32'), or {KEY_FILE_ENV} / policy.lookup.key_file "
                             "to a file of at least 32 random bytes.")
    if len(raw) < MIN_KEY_BYTES:
        raise LookupKeyError(f"the lookup key has {len(raw)} bytes; at least {MIN_KEY_BYTES} are needed so "
                             "tokens cannot be guessed. Fix: generate one with 'openssl rand -hex 32'.")
    return raw


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"breachwatch-lookup-v1." + payload, hashlib.sha256).digest()


def issue_token(subject_id: str, key: bytes, *, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    """A lookup token for one data subject, valid for `ttl_s` seconds."""
    if not subject_id:
        raise ValueError("subject id is empty. Fix: pass the member's or recipient's id.")
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    payload = orjson.dumps({"sub": str(subject_id), "exp": int(now + ttl_s), "v": 1})
    return f"{_b64(payload)}.{_b64(_sign(key, payload))}"


def _claimed(token: str) -> tuple[bytes, bytes, str | None]:
    """Split a token without trusting it; malformed parts become empty bytes (still compared)."""
    head, _, sig = token.partition(".")
    try:
        payload = _unb64(head)
    except (ValueError, TypeError):
        payload = b""
    try:
        mac = _unb64(sig)
    except (ValueError, TypeError):
        mac = b""
    try:
        claim = orjson.loads(payload).get("sub") if payload else None
    except (orjson.JSONDecodeError, AttributeError):
        claim = None
    return payload, mac, str(claim)[:200] if claim is not None else None


def verify_token(token: str, key: bytes, *, now: float | None = None) -> str | None:
    """The token's subject id, or None for any bad token (no reason given, on purpose)."""
    payload, mac, _ = _claimed(token or "")
    # Always compute and compare, whatever the input looked like, so a malformed
    # token costs the same as a well-formed forgery.
    good = hmac.compare_digest(_sign(key, payload), mac)
    if not good:
        return None
    d = orjson.loads(payload)
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    if not isinstance(d.get("exp"), int) or d["exp"] <= now or not isinstance(d.get("sub"), str):
        return None
    return d["sub"]


@dataclass(frozen=True)
class LookupResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class RateLimits:
    per_client: int = 10        # lookups per client per window
    per_subject: int = 20       # lookups of one verified subject per window
    window_s: int = 60

    @classmethod
    def from_catalog(cls, catalog: Catalog | None) -> RateLimits:
        conf = ((catalog.policy.get("lookup") or {}).get("rate") or {}) if catalog is not None else {}
        return cls(int(conf.get("per_client", cls.per_client)), int(conf.get("per_subject", cls.per_subject)),
                   int(conf.get("window_s", cls.window_s)))


_audit_lock = threading.Lock()


def _audit(con: duckdb.DuckDBPyConnection, at: datetime, client: str | None, outcome: str, subject: str | None,
           claimed: str | None, token: str) -> None:
    with _audit_lock:
        prev = con.execute("SELECT seq, hash FROM lookup_audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev_hash = (prev[0] + 1, prev[1]) if prev else (1, GENESIS)
        tok_hash = hashlib.sha256((token or "").encode()).hexdigest()
        row = [seq, at.isoformat(), client, outcome, subject, claimed, tok_hash]
        h = hashlib.sha256((prev_hash + "|" + orjson.dumps(row).decode()).encode()).hexdigest()
        con.execute("INSERT INTO lookup_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, at, client, outcome, subject, claimed, tok_hash, prev_hash, h])


def verify_audit(con: duckdb.DuckDBPyConnection) -> int | None:
    """The first audit row whose chain breaks (edited, deleted or reordered), or None when intact."""
    prev_hash, expect = GENESIS, 1
    for seq, at, client, outcome, subject, claimed, tok_hash, p, h in con.execute(
            "SELECT * FROM lookup_audit ORDER BY seq").fetchall():
        row = [seq, at.isoformat(), client, outcome, subject, claimed, tok_hash]
        if seq != expect or p != prev_hash or h != hashlib.sha256(
                (prev_hash + "|" + orjson.dumps(row).decode()).encode()).hexdigest():
            return expect
        prev_hash, expect = h, seq + 1
    return None


def _recent(con: duckdb.DuckDBPyConnection, column: str, value: str, since: datetime) -> int:
    return con.execute(f"SELECT count(*) FROM lookup_audit WHERE {column} = ? AND looked_up_at > ?", [value, since]).fetchone()[0]


def exposures_of(con: duckdb.DuckDBPyConnection, subject_id: str, catalog: Catalog) -> list[dict[str, Any]]:
    """What the latest scope run of each incident says about one subject."""
    rows = con.execute("""
        SELECT s.incident_id, s.fields, s.first_exposure, s.last_exposure
        FROM scope_subjects s
        JOIN (SELECT incident_id, arg_max(run_id, version) AS run_id FROM scope_runs GROUP BY 1) latest
          ON latest.run_id = s.run_id
        WHERE s.subject_id = ?
        ORDER BY s.first_exposure, s.incident_id""", [subject_id]).fetchall()
    out = []
    for inc, fields, first, last in rows:
        out.append({"incident": inc,
                    "fields": [{"field": f, "label": _label(catalog, f, "en"), "label_ko": _label(catalog, f, "ko")}
                               for f in fields],
                    "first_exposure": first.replace(tzinfo=timezone.utc).isoformat() if first else None,
                    "last_exposure": last.replace(tzinfo=timezone.utc).isoformat() if last else None})
    return out


def _label(catalog: Catalog, field: str, lang: str) -> str:
    info = catalog.fields.get(field)
    if not info:
        return field
    return info.label_ko if lang == "ko" else info.label


def lookup(con: duckdb.DuckDBPyConnection, token: str, *, key: bytes, catalog: Catalog,
           subject_id: str | None = None, client: str | None = None, limits: RateLimits = RateLimits(),
           now: datetime | None = None) -> LookupResponse:
    """Answer one lookup. `subject_id`, when the caller's URL names one, must be the token's own.

    Refusals (bad, forged, expired or someone else's) are byte-identical; a rate-limited
    client gets 429 before the token is even examined, so limits cannot be used to probe.
    """
    now = now or datetime.now(timezone.utc)
    at = now.astimezone(timezone.utc).replace(tzinfo=None)
    since = at - timedelta(seconds=limits.window_s)
    _, _, claimed = _claimed(token or "")
    if client is not None and _recent(con, "client", client, since) >= limits.per_client:
        _audit(con, at, client, "rate_limited", None, claimed, token)
        return LookupResponse(LIMITED_STATUS, LIMITED_BODY)
    subject = verify_token(token, key, now=now.timestamp())
    if subject is not None and subject_id is not None and not hmac.compare_digest(
            subject.encode(), str(subject_id).encode()):
        subject = None
    if subject is None:
        _audit(con, at, client, "denied", None, claimed, token)
        return LookupResponse(DENIED_STATUS, DENIED_BODY)
    if _recent(con, "subject_id", subject, since) >= limits.per_subject:
        _audit(con, at, client, "rate_limited", None, claimed, token)
        return LookupResponse(LIMITED_STATUS, LIMITED_BODY)
    # Audited before the read, so a lookup that fails half-way is still on record.
    _audit(con, at, client, "ok", subject, claimed, token)
    found = exposures_of(con, subject, catalog)
    body = {"subject_id": subject, "exposed": bool(found), "incidents": found,
            "contact": catalog.company.get("contact"), "checked_at": at.replace(tzinfo=timezone.utc).isoformat()}
    return LookupResponse(200, orjson.dumps(body))
